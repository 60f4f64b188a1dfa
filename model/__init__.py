"""The MagicBokeh model, training and inference (issues 6 and 7). Nothing public yet."""
