"""The measurement library: indicators from the usage event log's rollups, the SMG rulebook,
the level assessment per business process and the privacy rules. Pure Python: it imports no
web framework and no database code; the host application reads its tables and hands the
library plain values."""

DEFINITIONS_VERSION = "smg-indicators-1"
