"""Population screening over FHIR Bulk Data exports (issue 7).

``screen.run_screen`` screens an export with an engine (``duckdb_engine``, embedded; ``spark_engine``),
both returning ``engine.EngineResult``. The engines read with ``staging`` (the FHIR reading table as
SQL), build one facts row per patient with ``facts``, and apply the SQL of ``compiler`` (the KB's
tramadol and option rules and the population ``flags``), written with the building blocks of ``sql``
(dialects, set bit masks). ``per_patient`` computes the same outputs for one patient (the reference
of the tests and of ``synth``'s ground truth); ``summary`` counts, suppresses and charts; ``mme`` is
the MME table; ``export`` opens an export directory and locates malformed lines.
"""
