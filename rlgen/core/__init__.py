"""The shared core: networks, variational and adversarial pieces, and the one Trainer.

The RL side (GAIL, VIME) and the image models build on these modules rather than on copies.
"""
