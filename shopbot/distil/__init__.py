"""Training the embedded student: data from the real loop, LoRA, export, report (`shopbot distil`)."""
