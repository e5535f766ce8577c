"""Programs a run directory carries and a job runs inside its container (standard library plus
what the container ships; they never import slurmkit, which the container does not have)."""
