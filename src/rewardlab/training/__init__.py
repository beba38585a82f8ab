"""The training core (:mod:`.recipe`), the losses, batches, step plans and the scalar trainer (:mod:`.train`)."""
