"""`python -m slurmkit.trainer ...` (see slurmkit/trainer/train.py for the options)."""
from slurmkit.trainer.train import main

if __name__ == "__main__":
    main(prog="python -m slurmkit.trainer")
