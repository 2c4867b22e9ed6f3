"""Training data and training of the inverse (spectrum -> local structure) models."""
