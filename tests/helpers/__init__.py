"""What several test files share: generated images and datasets, fake CIFAR releases, a fake
trainer, the repository's paths. Fixtures live in tests/conftest.py."""
