"""Governance: process scopes, ambitions, roadmap, evidence, policy, training, readings."""
