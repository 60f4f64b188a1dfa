"""Scene composition and the Ray dataset build (issues 4 and 5). Nothing public yet."""
