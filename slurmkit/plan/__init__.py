"""Planning: validate every sweep point (parallelism, memory, program arguments), build the plan
(slurmkit.plan.make) and render one sbatch script per job with its launcher (slurmkit.plan.launch)."""
