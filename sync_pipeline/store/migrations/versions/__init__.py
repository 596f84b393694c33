"""One module per schema revision, oldest first: 0001 is the layout every database had before versioning."""
