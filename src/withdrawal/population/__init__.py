"""Population screening over FHIR Bulk Data exports (issue 7).

``synth`` writes a seeded synthetic export with ground truth; ``screen.run_screen`` screens an
export with DuckDB (embedded) or Spark; ``rules`` compiles the knowledge base's tramadol rules and
the population flags to SQL; ``facts`` turns staged FHIR rows into one facts row per patient.
"""
