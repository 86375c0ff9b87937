"""The ground floor every stage stands on: audio I/O, errors, paths, text normalisation, the
languages table, GPT-SoVITS `.list` files, transcript alignment. It imports no stage."""
