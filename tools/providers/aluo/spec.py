"""Aluo facts the tools need without loading the client: published prices (Free tier)."""

# Credits per call, Free tier (PRO: 35 per edit; 35/70/140 per 1/2/4 variants).
EDIT_PRICE = 40
GENERATE_PRICE = {1: 40, 2: 80, 4: 160}
