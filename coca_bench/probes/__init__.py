"""Probes trained on frozen features: a logistic-regression linear probe and CoCa's attentive probe.

Import the submodule you need: ``probes.linear`` needs scikit-learn only, ``probes.attentive`` needs torch, and this
package re-exports nothing so that one never drags in the other.
"""
