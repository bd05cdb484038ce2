"""Corpus jobs that stream: inputs cut into shards of rows, each shard mapped to a file by a worker.

The unit is the shard (one input file and a row range), as in Meta's stopes, Ray Data, Dask and Spark:
``sources`` finds and scans the input files, ``plan`` cuts them into shards, ``reading`` reads one
shard's texts, ``encode_job`` is the shard mapper (one model load per worker), ``engines`` runs the
mapper in this process, in local worker processes or on Ray, ``manifest`` records what was done so a
killed run resumes, and ``encode`` ties them together (:func:`paraxl.corpus.encode.encode_corpus`).
"""
