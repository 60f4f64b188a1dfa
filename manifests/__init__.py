"""Parquet schemas of assets and samples (issues 4 and 5). Nothing public yet."""
