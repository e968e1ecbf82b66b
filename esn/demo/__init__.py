"""The demo organisation: a simulated company acted out through the product's actions."""
