"""BASE: Bayesian meta architecture search over a Gumbel-softmax weight-sharing supernet."""

from transfernas.bayes.base import BASE, BASEConfig

__all__ = ["BASE", "BASEConfig"]
