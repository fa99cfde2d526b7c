"""Credentials by reference: the profile file, the environment, and refusals that
never show a secret."""

from __future__ import annotations

import pytest

from executors.credentials import profile_path, resolve
from ledger.errors import InvalidInput

SECRET = "s3cr3t-never-shown"


def test_a_name_resolves_from_the_profile_file(tmp_path):
    profile = tmp_path / "credentials.toml"
    profile.write_text(
        f'[lab-s3]\nkind = "s3"\naccess_key = "AK"\nsecret_key = "{SECRET}"\n'
    )
    env = {"STORCTL_CREDENTIALS": str(profile)}
    assert resolve("lab-s3", env) == {
        "kind": "s3",
        "access_key": "AK",
        "secret_key": SECRET,
    }


def test_the_environment_sets_and_overrides_keys(tmp_path):
    profile = tmp_path / "credentials.toml"
    profile.write_text('[lab-s3]\naccess_key = "from-file"\n')
    env = {
        "STORCTL_CREDENTIALS": str(profile),
        "STORCTL_CRED_LAB_S3_ACCESS_KEY": "from-env",
        "STORCTL_CRED_LAB_S3_SECRET_KEY": SECRET,
        "STORCTL_CRED_OTHER_KEY": "not ours",
    }
    assert resolve("lab-s3", env) == {"access_key": "from-env", "secret_key": SECRET}


def test_without_a_file_the_environment_alone_will_do(tmp_path):
    env = {
        "STORCTL_CREDENTIALS": str(tmp_path / "absent.toml"),
        "STORCTL_CRED_CEPH_USER": "admin",
    }
    assert resolve("ceph", env) == {"user": "admin"}


def test_an_unknown_name_is_refused_with_where_it_was_looked_for(tmp_path):
    env = {"STORCTL_CREDENTIALS": str(tmp_path / "absent.toml")}
    with pytest.raises(InvalidInput) as err:
        resolve("nope", env)
    assert err.value.exit_code == 2
    assert "absent.toml" in str(err.value)
    assert "STORCTL_CRED_NOPE_" in str(err.value)


def test_a_broken_profile_is_refused_without_quoting_it(tmp_path):
    profile = tmp_path / "credentials.toml"
    profile.write_text(f'[lab]\nsecret = "{SECRET}\n')  # an unclosed string
    with pytest.raises(InvalidInput) as err:
        resolve("lab", {"STORCTL_CREDENTIALS": str(profile)})
    assert SECRET not in str(err.value)
    assert "not valid TOML" in str(err.value)


def test_the_profile_defaults_to_the_users_config_folder(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert profile_path(env) == tmp_path / "storctl" / "credentials.toml"
