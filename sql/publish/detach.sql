DETACH pub;
