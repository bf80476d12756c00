"""Training: data loading, Keras models, evaluation against baselines, reports, export to models/."""
