"""Training kit on Hugging Face Accelerate: one loop (:mod:`.trainer`), one task class per model (:mod:`.tasks`)."""
