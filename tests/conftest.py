import pytest

from tvrlib.synthetic.benchmark import generate, load_config


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory):
    """The 'tiny' synthetic config generated into a temporary folder (a second, independent copy of the files)."""
    import os

    out = tmp_path_factory.mktemp("generated")
    old = os.environ.get("TVR_GENERATED_DIR")
    os.environ["TVR_GENERATED_DIR"] = str(out)
    try:
        root = generate(load_config("tiny"), workers=1, progress=False)
    finally:
        if old is None:
            os.environ.pop("TVR_GENERATED_DIR")
        else:
            os.environ["TVR_GENERATED_DIR"] = old
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread is fastest, and stays fast when other processes share the cores."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    """A ``tvr-tiny`` encoder with random weights (seed 0), loaded through the file path a checkpoint takes."""
    import torch

    from tvrlib.encoders import create_model, load_encoder, register_configs

    register_configs()
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny-random.pt"
    torch.save(create_model("tvr-tiny").state_dict(), path)
    return load_encoder("tvr-tiny", pretrained=str(path), device="cpu")
