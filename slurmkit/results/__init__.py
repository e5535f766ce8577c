"""Results: logs parsed (slurmkit.results.parsers) into the schema-versioned Parquet store."""
