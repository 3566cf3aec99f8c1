"""Face models and the pipeline that runs them: decode -> detect -> align -> embed + expression."""
