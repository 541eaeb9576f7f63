"""One adapter per CRM/MAP system behind one interface; knows nothing of `models` or `worker`."""
