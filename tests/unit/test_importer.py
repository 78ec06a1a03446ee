"""Import: profiles read from notebooks' setup cells, without running anything.

The notebooks in tests/notebooks/ reproduce the setup cells people really type
on Colab and Kaggle (fine-tuning with Drive and secrets, a web UI built from
clones and a CUDA index, an offline Kaggle competition install, ...). Each test
states what a person reads from the notebook: the pip and apt sets, Drive use,
the working folder and the clones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.importer import read_notebook, split_shell
from bootstrap.profile import parse, to_data

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "tests" / "notebooks"


def imported(name: str):
    result = read_notebook(NOTEBOOKS / name)
    # what was produced is what validates: the text itself, parsed again
    assert parse(result.toml, source=f"{name}.toml") == result.profile
    return result


def pip_set(profile) -> list:
    return [entry if isinstance(entry, str) else to_data(entry) for entry in profile.pip.packages]


def clones(profile) -> list[tuple[str, str | None, str]]:
    return [(repo.url, repo.ref, repo.dest) for repo in profile.git]


def notebook(tmp_path: Path, *cells: str, metadata: dict | None = None) -> Path:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5,
                                "metadata": metadata or {"colab": {}},
                                "cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                                           "execution_count": None, "source": c}
                                          for c in cells]}))
    return path


def test_colab_finetune_pip_drive_secrets_gpu_and_workdir():
    result = imported("colab_finetune.ipynb")
    profile = result.profile
    assert pip_set(profile) == ["transformers==4.46.3", "datasets", "evaluate", "accelerate",
                                "peft", "bitsandbytes", {"requirement": "trl", "upgrade": True},
                                "wandb"]
    assert profile.drive is not None and profile.drive.mount and profile.drive.mountpoint is None
    assert profile.workdir.path == "llm/finetune"      # under MyDrive: relative to the Drive root
    assert profile.secrets == {"HF_TOKEN": "HF_TOKEN", "WANDB_API_KEY": "WANDB_API_KEY"}
    assert profile.env == {"WANDB_PROJECT": "llm-finetune"}
    assert profile.gpu.required is True
    assert profile.apt is None and profile.git == [] and profile.run == []
    assert [(s.cell, s.text) for s in result.skipped] == [(6, "!ls -la")]


def test_colab_web_ui_clones_apt_and_the_cuda_index():
    result = imported("colab_sd_webui.ipynb")
    profile = result.profile
    assert profile.apt.packages == ["aria2", "libcairo2-dev", "pkg-config"]
    # -U on an exact pin changes nothing, so it is not carried over
    assert pip_set(profile) == ["torch==2.0.1+cu118", "torchvision==0.15.2+cu118",
                                "xformers==0.0.20", "triton==2.0.0"]
    assert profile.pip.extra_index_urls == ["https://download.pytorch.org/whl/cu118"]
    assert clones(profile) == [
        ("https://github.com/camenduru/stable-diffusion-webui", "v2.6",
         "/content/stable-diffusion-webui"),
        ("https://huggingface.co/embed/negative", None,
         "/content/stable-diffusion-webui/embeddings/negative")]
    assert profile.drive is None
    assert profile.workdir.path == "/content/stable-diffusion-webui"
    assert profile.env == {"TF_CPP_MIN_LOG_LEVEL": "1"}
    # aria2c -d DIR -o NAME URL: a download, trusted on first use (no sha256 is known)
    (download,) = profile.files
    assert download.url == "https://huggingface.co/embed/upscale/resolve/main/4x-UltraSharp.pth"
    assert download.dest == "/content/stable-diffusion-webui/models/ESRGAN/4x-UltraSharp.pth"
    assert download.sha256 is None and download.unpack is False
    (sed,) = profile.run
    # sed's own braces are no Python value: IPython leaves them, so does the importer
    assert sed.argv[3] == "s/checkout {{commithash}}/checkout --force {{commithash}}/g"
    assert sed.cwd == "/content/stable-diffusion-webui"
    # starting the web UI is the notebook's work, not setup: listed, not run on restore
    (launch,) = result.skipped
    assert launch.text.startswith("!python launch.py --listen") and "work" in launch.reason


def test_colab_yolo_clone_then_cd_then_pip_requirements():
    result = imported("colab_yolo.ipynb")
    profile = result.profile
    assert clones(profile) == [("https://github.com/ultralytics/yolov5", None, "/content/yolov5")]
    assert profile.workdir.path == "/content/yolov5"
    assert pip_set(profile) == ["comet_ml"]
    # -qr after %cd into the clone: the clone's file, read when the restore runs
    assert profile.pip.requirements == ["/content/yolov5/requirements.txt"]
    assert not any("requirements" in s.reason for s in result.skipped)
    assert not any("nothing in the notebook makes" in note for note in result.notes)


def test_colab_audio_sudo_apt_git_url_my_drive_and_bash_cell():
    result = imported("colab_audio.ipynb")
    profile = result.profile
    assert profile.apt.packages == ["ffmpeg", "libsndfile1"]
    assert pip_set(profile) == ["whisper @ git+https://github.com/openai/whisper.git", "numpy<2",
                                "librosa==0.10.1", "soundfile"]
    assert profile.drive.mount is True
    # "My Drive" is the older name of MyDrive: both are the Drive root
    assert profile.workdir.path == "audio/experiments"
    assert profile.env == {"DATA_DIR": "{drive}/audio/data"}
    # wget -O speech.zip && unzip speech.zip -d /content/data: one download, unpacked
    (data,) = profile.files
    assert (data.url, data.dest, data.unpack, data.sha256) == (
        "https://example.org/datasets/speech-commands-small.zip", "/content/data", True, None)
    assert "sha256 = \"...\"" in result.toml and "first restore records" in result.toml
    mkdir, untar = profile.run
    assert mkdir.creates == "noise" and mkdir.cwd == "/content"
    # cd inside a %%bash cell holds for the rest of that cell
    assert untar.argv[0] == "tar" and untar.cwd == "/content/noise"
    assert any("whisper" in note for note in result.notes)  # the guessed name is pointed out


def test_colab_pyg_scoped_index_and_unresolved_f_string():
    result = imported("colab_pyg.ipynb")
    profile = result.profile
    assert pip_set(profile) == ["torch==2.3.0", "torchvision==0.18.0", "torch_geometric", "ogb",
                                "networkx==3.3"]
    # --index-url on one line of several: that index serves only that line's packages
    (index,) = profile.pip.indexes
    assert index.url == "https://download.pytorch.org/whl/cu121"
    assert index.packages == ["torch", "torchvision"]
    assert profile.pip.index_url is None
    (skipped,) = result.skipped
    assert skipped.cell == 3 and "{TORCH}" in skipped.text
    assert "only known when the notebook runs" in skipped.reason
    assert "#   cell 3: !pip install torch-scatter" in result.toml


def test_kaggle_offline_wheels_find_links_and_no_index():
    result = imported("kaggle_offline.ipynb")
    profile = result.profile
    assert pip_set(profile) == ["pytorch_tabular", "autograd==1.7.0", "autograd-gamma==0.5.0",
                                {"requirement": "lifelines==0.30.0", "no_deps": True}]
    assert profile.pip.no_index is True
    assert profile.pip.find_links == ["/kaggle/input/cibmtr-wheels",
                                      "/kaggle/input/lifelines-wheels"]
    assert profile.drive is None and profile.git == [] and profile.apt is None
    assert profile.workdir.path == "/kaggle/working"
    assert profile.secrets == {"WANDB_API": "wandb_api"}
    # where it ran, from the notebook's metadata: a restore elsewhere says what differs
    assert (profile.captured.platform, profile.captured.python) == ("kaggle", "3.10")
    assert any("wildcard" in s.reason for s in result.skipped)
    assert any("Kaggle" in note for note in result.notes)


def test_kaggle_llm_secret_value_never_written_and_clone_installed():
    result = imported("kaggle_llm.ipynb")
    profile = result.profile
    value = "0123456789abcdef0123456789abcdef01234567"
    assert value not in result.toml and value not in result.text()
    assert profile.secrets == {"HF_TOKEN": "HF_TOKEN", "WANDB_API_KEY": "WANDB_API_KEY"}
    assert profile.env == {}
    assert pip_set(profile) == [{"requirement": "bitsandbytes", "upgrade": True},
                                {"requirement": "accelerate", "upgrade": True},
                                {"requirement": "peft==0.12.0", "no_deps": True}]
    assert profile.apt.packages == ["git-lfs"]
    (repo,) = profile.git
    assert (repo.url, repo.ref, repo.dest) == ("https://github.com/huggingface/transformers.git",
                                               None, "/kaggle/working/transformers")
    assert repo.install is True and repo.editable is True       # cd clone && pip install -e .
    assert profile.workdir.path == "/kaggle/working/transformers/examples"


def test_mixed_python_and_shell_lines():
    result = imported("mixed_lines.ipynb")
    profile = result.profile
    assert pip_set(profile) == [
        "polars==1.9.0",            # !python -m pip inside try/except
        "rich>=13",                 # subprocess.check_call([sys.executable, "-m", "pip", ...])
        "duckdb", "tqdm",           # uv pip install --system x; pip3 install -q y
        "httpx>=0.27", "orjson",    # -r of a file the notebook wrote with %%writefile
        {"path": "/content/pkgs/mylib", "no_deps": True},
    ]
    assert profile.env == {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "2",
                           "TOKENIZERS_PARALLELISM": "false"}
    assert clones(profile) == [("https://github.com/example/tools.git", "3f2c1a9",
                                "/content/tools")]
    make, curl = profile.run
    assert make.argv == ["make", "-j2"] and make.cwd == "/content/tools"
    assert curl.shell == "curl -sSL https://example.org/install.sh | bash"
    assert profile.workdir.path == "/content/tools"
    reasons = {s.cell: s.reason for s in result.skipped}
    assert "%cd or os.chdir" in reasons[6]                       # !cd alone changes nothing
    assert "only known when the notebook runs" in reasons[7]     # {name} from input()
    assert "conda" in reasons[10]
    for item in result.skipped:                                   # all kept in the profile
        assert f"#   cell {item.cell}: " in result.toml
    assert "review: cell 8: !make -j2" in result.toml


def test_python_lines_setup_tools_and_scripts(tmp_path):
    path = notebook(tmp_path, "!git clone https://github.com/org/lib\n%cd lib\n"
                              "!python setup.py develop\n!python -m spacy download en_core_web_sm\n"
                              "!python train.py --epochs 3\n!rm -rf sample_data")
    result = read_notebook(path)
    (repo,) = result.profile.git
    assert repo.dest == "/content/lib" and repo.install and repo.editable
    (tool,) = result.profile.run
    assert tool.argv == ["python", "-m", "spacy", "download", "en_core_web_sm"]
    assert [s.text for s in result.skipped] == ["!python train.py --epochs 3",
                                                "!rm -rf sample_data"]


def test_every_corpus_notebook_validates_through_the_cli(tmp_path, isolated):
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        done = subprocess.run([sys.executable, "-m", "bootstrap", "import", str(path)],
                              capture_output=True, text=True, timeout=120, cwd=REPO)
        assert done.returncode == 0, done.stderr
        checked = subprocess.run([sys.executable, "-m", "bootstrap", "validate", path.stem],
                                 capture_output=True, text=True, timeout=120, cwd=REPO)
        assert checked.returncode == 0, checked.stderr
        assert (isolated["store"] / "profiles" / f"{path.stem}.toml").is_file()


@pytest.mark.parametrize("line, expected", [
    ("a && b; c", [("a", ""), ("b", "&&"), ("c", ";")]),
    ("echo 'x && y' && z", [("echo 'x && y'", ""), ("z", "&&")]),
    ("pip install x  # comment; not a command", [("pip install x", "")]),
    ("a || true", [("a", ""), ("true", "||")]),
    ("cmd > /dev/null 2>&1 && next", [("cmd > /dev/null 2>&1", ""), ("next", "&&")]),
])
def test_shell_lines_split_at_top_level_operators(line, expected):
    assert split_shell(line) == expected


def test_pip_options_map_to_profile_keys(tmp_path):
    path = notebook(
        tmp_path,
        "!pip install -q --upgrade --no-cache-dir 'pandas>=2' --root-user-action=ignore\n"
        "!pip install --no-deps flash-attn==2.6.3\n"
        "!pip install -qU 'accelerate>=1.0'\n"
        "!pip install --extra-index-url https://pypi.example.org/simple private-pkg\n"
        "!pip install -f https://data.pyg.org/whl/torch-2.3.0+cu121.html torch-scatter\n"
        "!pip install https://example.org/wheels/tool-1.2-py3-none-any.whl\n"
        "!pip install git+https://github.com/org/lib.git@v2#egg=orglib\n"
        "!pip uninstall -y tensorflow\n"
        "!pip install --pre some-beta\n"
        "!pip install -q https://github.com/org/widget/archive/refs/heads/main.zip\n"
        "from huggingface_hub import notebook_login\nnotebook_login()")
    result = read_notebook(path)
    pip = result.profile.pip
    assert pip_set(result.profile) == [
        {"requirement": "pandas>=2", "upgrade": True},
        {"requirement": "flash-attn==2.6.3", "no_deps": True},
        {"requirement": "accelerate>=1.0", "upgrade": True},
        "private-pkg", "torch-scatter",
        "tool @ https://example.org/wheels/tool-1.2-py3-none-any.whl",
        "orglib @ git+https://github.com/org/lib.git@v2",
        "some-beta", "widget @ https://github.com/org/widget/archive/refs/heads/main.zip"]
    assert pip.extra_index_urls == ["https://pypi.example.org/simple"]
    assert pip.find_links == ["https://data.pyg.org/whl/torch-2.3.0+cu121.html"]
    assert any("uninstall" in s.reason for s in result.skipped)
    assert any(s.text == "notebook_login()" and "[secrets]" in s.reason for s in result.skipped)
    assert any("--pre" in note for note in result.notes)


def test_one_index_url_for_every_pip_line_is_the_index(tmp_path):
    path = notebook(tmp_path, "!pip install -i https://mirror.example.org/simple a\n"
                              "%pip install --index-url=https://mirror.example.org/simple b")
    pip = read_notebook(path).profile.pip
    assert pip.index_url == "https://mirror.example.org/simple" and pip.indexes == []


def test_common_colab_lines(tmp_path):
    path = notebook(tmp_path,
                    "%pip install -q --upgrade pip\n"
                    "!DEBIAN_FRONTEND=noninteractive apt-get install -y tzdata\n"
                    "!sudo apt update && sudo apt install -y -qq graphviz\n"
                    "!pip install torch==2.1.0+cu118 -f https://download.pytorch.org/whl/torch_stable.html\n"
                    "!pip install -e git+https://github.com/org/tool.git#egg=tool\n"
                    "from google.colab import files\nuploaded = files.upload()\n"
                    "%cd /content/drive/MyDrive/Colab\\ Notebooks/proj\n"
                    "!curl -LO https://example.org/a.tar.gz && tar xzf a.tar.gz\n"
                    "!gdown --id 1AbCdEf -O data.zip")
    result = read_notebook(path)
    profile = result.profile
    assert pip_set(profile) == ["torch==2.1.0+cu118", "tool @ git+https://github.com/org/tool.git"]
    assert profile.pip.find_links == ["https://download.pytorch.org/whl/torch_stable.html"]
    assert profile.apt.packages == ["tzdata", "graphviz"]
    # no drive.mount, but Drive paths: Drive was mounted from the Files panel
    assert profile.drive.mount is True and "Files panel" in result.toml
    assert profile.workdir.path == "Colab Notebooks/proj"
    # curl -LO: a download into the working folder (on Drive); tar without -C is no unpack
    (archive,) = profile.files
    assert (archive.url, archive.dest) == ("https://example.org/a.tar.gz",
                                           "Colab Notebooks/proj/a.tar.gz")
    tar, gdown = profile.run
    assert tar.argv == ["tar", "xzf", "a.tar.gz"]
    # a Drive file id: only gdown follows Drive's confirmation page, so it stays a command
    assert gdown.argv[0] == "gdown" and gdown.creates == "data.zip"
    reasons = [s.reason for s in result.skipped]
    assert any("pip itself" in r for r in reasons) and any("upload" in r for r in reasons)


def test_pipes_after_work_or_queries_and_apt_repositories_the_notebook_adds(tmp_path):
    path = notebook(tmp_path,
                    "!apt-get -qq update && apt-get -qq install -y ffmpeg >/dev/null 2>&1\n"
                    "!ffmpeg -version | head -1\n"
                    "!PYTHONPATH=. python train.py --ablation a 2>&1 | tee /tmp/train.log\n"
                    "!curl -sSL https://example.org/key.asc | tee /etc/apt/trusted.gpg.d/x.asc "
                    ">/dev/null && echo 'deb https://example.org/apt stable main' | "
                    "tee /etc/apt/sources.list.d/x.list && apt update && apt install -y xtool")
    result = read_notebook(path)
    profile = result.profile
    assert profile.apt.packages == ["ffmpeg"]
    key, source, xtool = profile.run
    assert key.shell.startswith("curl -sSL") and source.shell.startswith("echo 'deb")
    assert xtool.argv == ["apt-get", "install", "-y", "xtool"]
    assert [s.text for s in result.skipped] == ["!ffmpeg -version",
                                                "!PYTHONPATH=. python train.py --ablation a"]


def test_requirements_files_are_taken_where_the_notebook_was(tmp_path):
    path = notebook(tmp_path,
                    "!pip install -r /content/base.txt\n"
                    "%cd /content/drive/MyDrive/proj\n"
                    "%pip install -qr requirements.txt rich\n"
                    "!pip install -r ~/extra.txt -r requirements.txt\n"
                    "!pip install -r https://example.org/requirements.txt")
    result = read_notebook(path)
    pip = result.profile.pip
    # a relative -r is taken against the folder of that moment; Drive paths use {drive}
    assert pip.requirements == ["/content/base.txt", "{drive}/proj/requirements.txt",
                                "{home}/extra.txt"]
    assert pip_set(result.profile) == ["rich"]
    # files nothing in the notebook makes are pointed out; Drive keeps its own files
    made = [note for note in result.notes if "nothing in the notebook makes" in note]
    assert len(made) == 2 and "/content/base.txt" in made[0] and "/root/extra.txt" in made[1]
    (url,) = result.skipped
    assert url.text.endswith("https://example.org/requirements.txt") and "URL" in url.reason


def test_an_imported_requirements_file_restores_the_same_packages(tmp_path, isolated, wheelhouse,
                                                                  fresh_venv):
    from bootstrap import restore
    from tests.support.venvs import installed

    proj = isolated["drive"] / "proj"
    proj.mkdir()
    (proj / "requirements.txt").write_text("alpha==1.0\nbeta\n")
    path = notebook(tmp_path, "%cd /content/drive/MyDrive/proj\n!pip install -r requirements.txt")
    imported_pip = read_notebook(path).profile.pip
    # the imported path, restored on a machine whose Drive root is elsewhere
    profile = parse(f'[pip]\nno_index = true\nfind_links = ["{wheelhouse}"]\n'
                    f"requirements = {json.dumps(imported_pip.requirements)}\n", source="r.toml")
    restore(profile, python=str(fresh_venv))
    assert installed(fresh_venv) == {"alpha": "1.0", "beta": "1.0"}


def test_downloads_become_files_entries_trusted_on_first_use(tmp_path):
    path = notebook(tmp_path,
                    "!curl -L -o /content/weights/model.pt https://example.org/m.pt\n"
                    "!wget -q https://example.org/d.tar.gz && tar -xzf d.tar.gz -C /content/d\n"
                    "!wget https://example.org/e.zip\n"
                    "!mkdir -p /content/x\n"
                    "!unzip -q e.zip -d /content/e\n"
                    "!gdown https://example.org/tool.bin -O /content/tool.bin\n"
                    "!curl -H 'Accept: application/zip' -o h.zip https://example.org/h.zip\n"
                    "!wget http://example.org/plain.bin")
    result = read_notebook(path)
    profile = result.profile
    files = [(f.url, f.dest, f.unpack, f.sha256) for f in profile.files]
    assert files == [
        ("https://example.org/m.pt", "/content/weights/model.pt", False, None),
        # tar -C right after the download of that archive: one entry, unpacked
        ("https://example.org/d.tar.gz", "/content/d", True, None),
        # an unzip that is not right after its download stays a command
        ("https://example.org/e.zip", "/content/e.zip", False, None),
        ("https://example.org/tool.bin", "/content/tool.bin", False, None)]
    mkdir, unzip, headers, plain = profile.run
    assert mkdir.argv[0] == "mkdir"
    assert unzip.argv[:2] == ["unzip", "-q"] and unzip.creates == "e"
    # a header or plain http has no [[files]] form: a guarded command, with the reason
    assert headers.argv[0] == "curl" and headers.creates == "h.zip"
    assert plain.argv[0] == "wget" and plain.creates == "plain.bin"
    assert "not a [[files]] entry: -H" in result.toml
    assert result.toml.count("to pin it now, add sha256") == 4


def test_download_urls_with_credentials_are_listed_not_written(tmp_path):
    token = "ghp_0123456789abcdefABCDEF0123456789abcd"
    path = notebook(tmp_path,
                    f"!wget 'https://example.org/w.bin?token={token}' -O w.bin\n"
                    "!curl -L -o d.zip https://alice:s3cretPassw0rd@example.org/d.zip\n"
                    "!wget https://example.org/signed.bin?X-Amz-Signature=abcdef0123456789 "
                    "-O signed.bin")
    result = read_notebook(path)
    assert result.profile.files == [] and result.profile.run == []
    for secret in (token, "s3cretPassw0rd", "abcdef0123456789"):
        assert secret not in result.toml and secret not in result.text()
    assert len(result.skipped) == 3
    assert all("credential" in item.reason for item in result.skipped)


def test_an_imported_download_restores_and_its_digest_is_recorded(tmp_path, isolated):
    import hashlib
    import zipfile

    from bootstrap import restore
    from tests.support.httpserver import LoopbackServer

    www = tmp_path / "www"
    www.mkdir()
    with zipfile.ZipFile(www / "data.zip", "w") as archive:
        archive.writestr("train/a.txt", "a")
    vm = tmp_path / "vm"
    with LoopbackServer(www) as srv:
        path = notebook(tmp_path, f"!wget -q {srv.url_for('data.zip')} -O {vm}/data.zip && "
                                  f"unzip -q {vm}/data.zip -d {vm}/data")
        profile = read_notebook(path).profile
        (entry,) = profile.files
        assert entry.unpack and entry.dest == f"{vm}/data" and entry.sha256 is None
        first = restore(profile)
    assert (vm / "data" / "train" / "a.txt").read_text() == "a"
    assert any("trusted on first use" in note for note in first.step("files").notes)
    record = json.loads((isolated["store"] / "profiles" / "locks" / "downloads.nb.json")
                        .read_text())
    digest = hashlib.sha256((www / "data.zip").read_bytes()).hexdigest()
    assert list(record["sha256"].values()) == [digest]


def test_the_last_install_of_a_name_wins(tmp_path):
    path = notebook(tmp_path, "!pip install numpy==1.26.4 scipy", "!pip install 'numpy<2.1'")
    assert pip_set(read_notebook(path).profile) == ["scipy", "numpy<2.1"]


def test_secret_looking_values_and_lines_are_never_copied(tmp_path):
    token = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
    path = notebook(tmp_path,
                    f"import os\nos.environ['HF_HOME_X'] = '{token}'\n"
                    f"%env SOME_VALUE={token}\n"
                    f"!huggingface-cli login --token {token}\n"
                    f"!git clone https://user:{token}@github.com/org/private.git")
    result = read_notebook(path)
    assert token not in result.toml and token not in result.text()
    assert result.profile.secrets == {"HF_HOME_X": "HF_HOME_X", "SOME_VALUE": "SOME_VALUE"}
    assert result.profile.run == [] and result.profile.git == []
    assert len(result.skipped) == 2


def test_a_secret_read_into_a_variable_stays_a_reference_in_shell_lines(tmp_path):
    path = notebook(tmp_path,
                    "from kaggle_secrets import UserSecretsClient\n"
                    "github_token = UserSecretsClient().get_secret('GITHUB_TOKEN')\n"
                    "!git push https://{github_token}@github.com/org/repo.git main\n"
                    "!huggingface-cli login --token $github_token",
                    metadata={"kaggle": {}})
    result = read_notebook(path)
    assert result.profile.secrets == {"GITHUB_TOKEN": "GITHUB_TOKEN"}
    assert result.profile.run == []
    assert [s.cell for s in result.skipped] == [1, 1]


def test_workdir_is_the_last_cd_or_chdir_and_drive_mountpoint_is_kept(tmp_path):
    path = notebook(tmp_path,
                    "from google.colab import drive\ndrive.mount('/content/gdrive')",
                    "%cd /content/gdrive/MyDrive/a",
                    "import os\nBASE = '/content/gdrive/MyDrive'\n"
                    "os.chdir(os.path.join(BASE, 'b'))",
                    "%cd ..\n%cd c",
                    "%env GREETING=hello world\n%set_env QUOTED \"as written\"")
    profile = read_notebook(path).profile
    assert profile.drive.mountpoint == "/content/gdrive"
    assert profile.workdir.path == "c"
    assert profile.env == {"GREETING": "hello world", "QUOTED": '"as written"'}
    # IPython's %cd takes the rest of the line, blanks included
    spaced = notebook(tmp_path, "from google.colab import drive\ndrive.mount('/content/drive')\n"
                                "%cd /content/drive/My Drive/colab work")
    assert read_notebook(spaced).profile.workdir.path == "colab work"


def test_branches_each_start_from_the_same_folder_and_the_first_one_is_kept(tmp_path):
    path = notebook(tmp_path,
                    "import os\nif not os.path.exists('proj'):\n"
                    "    !git clone https://github.com/org/proj.git\n    %cd proj\n"
                    "else:\n    %cd proj\n    !git pull\n"
                    "try:\n    import fancy\nexcept ImportError:\n    !pip install -q fancy\n"
                    "!mkdir -p out")
    result = read_notebook(path)
    profile = result.profile
    assert clones(profile) == [("https://github.com/org/proj.git", None, "/content/proj")]
    assert profile.workdir.path == "/content/proj"
    assert pip_set(profile) == ["fancy"]
    (mkdir,) = profile.run
    assert mkdir.cwd == "/content/proj" and mkdir.creates == "out"
    assert [s.text for s in result.skipped] == ["!git pull"]


def test_a_notebook_without_setup_gives_a_bare_valid_profile(tmp_path):
    path = notebook(tmp_path, "print(1 + 1)", "def f(x):\n    return x\n", "%matplotlib inline")
    result = read_notebook(path)
    assert result.profile.sections() == [] and result.skipped == []
    assert result.profile.captured.platform == "colab"


def test_a_line_python_cannot_read_does_not_hide_the_others(tmp_path):
    path = notebook(tmp_path, "print 'python 2'\n!pip install six\nx = 1; !echo hi\n"
                              "if True:\n    import\n    !pip install seven\n"
                              "for name in ['a']:\n    print(name)\n%cd /content/x")
    result = read_notebook(path)
    assert pip_set(result.profile) == ["six", "seven"]
    assert result.profile.workdir.path == "/content/x"
    assert [s.text for s in result.skipped] == ["print 'python 2'", "x = 1; !echo hi", "import"]


def test_a_file_that_is_not_a_notebook_is_an_option_error(tmp_path):
    from bootstrap.errors import OptionError

    bad = tmp_path / "x.ipynb"
    bad.write_text("not json")
    with pytest.raises(OptionError) as caught:
        read_notebook(bad)
    assert caught.value.where == str(bad) and "Jupyter notebook" in caught.value.hint
    with pytest.raises(OptionError):
        read_notebook(tmp_path / "missing.ipynb")
    with pytest.raises(OptionError):
        read_notebook(NOTEBOOKS / "colab_yolo.ipynb", name="no spaces allowed")


def test_faces_agree_api_cli_and_magic(tmp_path, isolated):
    from IPython.core.interactiveshell import InteractiveShell

    import bootstrap

    source = NOTEBOOKS / "colab_finetune.ipynb"
    dry = bootstrap.import_notebook(source, name="ft", dry_run=True)
    assert dry.path == isolated["store"] / "profiles" / "ft.toml" and not dry.path.exists()

    done = subprocess.run([sys.executable, "-m", "bootstrap", "import", str(source),
                           "--name", "ft"], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert f"imported {source} as profile ft" in done.stdout
    assert "cell 6: !ls -la" in done.stdout
    written = dry.path.read_text()
    def strip(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("# Imported by")]

    assert strip(written) == strip(dry.toml)

    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "bootstrap")
        shell.run_line_magic("import_env", f"{source} --name ft")
    finally:
        InteractiveShell.clear_instance()
    history = list((isolated["store"] / "profiles" / "history").glob("ft-*.toml"))
    assert len(history) == 1 and history[0].read_text() == written  # the old one was kept
    assert strip(dry.path.read_text()) == strip(dry.toml)
    assert bootstrap.load_profile("ft") == dry.profile


@pytest.mark.skipif(not os.environ.get("BOOTSTRAP_REAL_NOTEBOOKS"),
                    reason="set BOOTSTRAP_REAL_NOTEBOOKS to a folder of downloaded notebooks")
def test_real_notebooks_import_and_validate():
    """Public notebooks are not committed: point this at a folder of them (e.g. Colab and
    Kaggle notebooks fetched from their repositories) to check that each imports, validates
    and carries no secret value."""
    from bootstrap.redact import is_secret

    folder = Path(os.environ["BOOTSTRAP_REAL_NOTEBOOKS"])
    paths = sorted(folder.rglob("*.ipynb"))
    assert paths, f"no notebooks in {folder}"
    for path in paths:
        result = read_notebook(path)
        assert parse(result.toml, source=path.name) == result.profile, path
        assert not any(is_secret("", line) for line in result.toml.splitlines()), path
