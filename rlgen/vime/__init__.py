"""VIME (Houthooft et al. 2016): a Bayesian dynamics model and the information gain it yields."""

from rlgen.vime.dynamics import BayesianDynamics, ReplayPool, train_dynamics
from rlgen.vime.info_gain import (
    info_gain_exact,
    info_gain_second_order,
    kl_hessian_diag,
    sample_noise,
    transition_loss,
    variational_params,
)

__all__ = [
    "BayesianDynamics",
    "ReplayPool",
    "info_gain_exact",
    "info_gain_second_order",
    "kl_hessian_diag",
    "sample_noise",
    "train_dynamics",
    "transition_loss",
    "variational_params",
]
