"""Configuration: site configs, experiments and their sweeps, the model catalogue, the JSON Schema."""
