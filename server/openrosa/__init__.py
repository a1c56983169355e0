"""OpenRosa endpoints for ODK Collect: formList, manifests, media, submissions."""
