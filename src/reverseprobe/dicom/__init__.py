"""DICOM with pynetdicom: association probes, the temporary listener, move-test."""
