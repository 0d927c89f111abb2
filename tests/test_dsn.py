"""DSN masking and target descriptions (pure logic: unit + property tests)."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fsar_tui.dsn import MASK, describe_target, is_local_host, mask_dsn

# Passwords made of characters that never occur elsewhere in the test DSNs, so
# "the password does not appear" is a meaningful check.
passwords = st.text(alphabet=st.sampled_from("QWXZ!#$%^&*()@:/?=+ ~'\\\"é漢"), min_size=1, max_size=30)


def test_uri_password_masked():
    assert mask_dsn("postgresql://app:s3cret@db.example:5432/prod") == "postgresql://app:****@db.example:5432/prod"


def test_uri_without_password_unchanged():
    assert mask_dsn("postgresql://app@db/prod?sslmode=require") == "postgresql://app@db/prod?sslmode=require"


def test_uri_query_password_masked():
    masked = mask_dsn("postgresql://db/prod?sslmode=require&password=hunter2&application_name=x")
    assert "hunter2" not in masked and "password=****" in masked and "application_name=x" in masked


def test_keyvalue_password_masked_quoted_and_plain():
    assert mask_dsn("host=db password=s3cret dbname=x") == "host=db password=**** dbname=x"
    assert mask_dsn("host=db password='s 3 cret' dbname=x") == "host=db password=**** dbname=x"
    assert mask_dsn("host=db PASSWORD = abc port=1") == "host=db PASSWORD = **** port=1"


def test_mqtt_url_masked():
    assert mask_dsn("mqtt://bot:pa55@broker:1883") == "mqtt://bot:****@broker:1883"


def test_empty():
    assert mask_dsn(None) == "" and mask_dsn("") == ""


@given(passwords)
def test_uri_property_password_never_survives(password):
    dsn = f"postgresql://user:{quote(password, safe='')}@host:5432/db"
    masked = mask_dsn(dsn)
    assert quote(password, safe="") not in masked
    assert conninfo_to_dict(masked)["password"] == MASK


@given(passwords)
def test_keyvalue_property_password_never_survives(password):
    dsn = make_conninfo("", host="host", port="5432", dbname="db", password=password)
    masked = mask_dsn(dsn)
    assert conninfo_to_dict(masked)["password"] == MASK
    assert conninfo_to_dict(masked)["host"] == "host"


@given(passwords)
def test_unencoded_at_sign_in_uri_password(password):
    # Users paste passwords containing '@' unencoded; everything before the host is masked.
    masked = mask_dsn(f"postgresql://user:{password.replace('/', '')}@host/db")
    assert masked.startswith("postgresql://user:****@")


def test_describe_target():
    assert describe_target("postgresql://u:p@db.example:6543/prod") == "db.example:6543/prod"
    assert describe_target("host=h dbname=d password=x") == "h:5432/d"
    assert "p" not in describe_target("postgresql://u:p@h/d").split(":")[0]


def test_is_local_host():
    assert is_local_host("postgresql://u@127.0.0.1/d")
    assert is_local_host("postgresql:///d?host=/tmp/sock")
    assert not is_local_host("postgresql://u@db.example/d")
