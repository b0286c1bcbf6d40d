DROP TABLE IF EXISTS rekey_pending;
