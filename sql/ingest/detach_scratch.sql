DETACH scratch;
