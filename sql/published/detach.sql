-- The new file is complete: let go of it before it is checkpointed and renamed into place.
DETACH pub;
