"""CDS Hooks 2.0 services: discovery, patient-view, order-select, order-sign, feedback."""
