"""Real-ESRGAN second-order degradations on basicsr (issue 3). Nothing public yet."""
