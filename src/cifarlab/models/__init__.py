"""Networks and model files: architectures registered with their default recipes (`registry`,
`fast`, `baseline`), the typed `ModelMetadata` contract, and saving/loading `.keras` files."""
