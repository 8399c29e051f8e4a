"""Process settings: one frozen object from a TOML file plus HUIMIN_* environment variables.

The only module that reads the environment. Precedence: explicit overrides (CLI flags) > env >
TOML file > defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from erasure.codec import CODECS, DEFAULT_CODEC


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUIMIN_", frozen=True, extra="forbid")

    data_dir: Path = Path("./data")
    listen: str = "127.0.0.1:9000"
    region: str = "us-east-1"
    drives: int = Field(default=12, ge=1, description="drive folders the embedded server lays out")
    ec_data_shards: int = Field(default=8, ge=1, le=32)
    ec_parity_shards: int = Field(default=4, ge=1, le=16)
    codec: str = DEFAULT_CODEC
    block_size_bytes: int = Field(default=4 * 1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    inline_threshold_bytes: int = Field(default=128 * 1024, ge=0, le=1024 * 1024)
    min_part_size_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    max_object_size_bytes: int = 5 * 1024**4
    max_clock_skew_s: int = 900
    io_threads: int = Field(default=16, ge=1)
    root_access_key: str | None = None
    root_secret_key: str | None = None
    virtual_host_suffix: str | None = None
    log_level: str = "INFO"
    # Distributed mode (`huimin node`, `huimin gateway`): written by `huimin cluster up`.
    topology: Path | None = None
    deployment_id: str | None = None
    cluster_secret: str | None = None
    name: str | None = Field(default=None, description="this node's name in the topology")
    drive_root: Path | None = Field(default=None, description="folder of this node's drives")
    node_timeout_s: float = Field(default=3.0, gt=0, description="deadline of one node call")
    # TCP congestion control (Linux): of the connections between gateways and nodes (a node's
    # listener, a gateway's connections to nodes), and of the S3 listener's. "" keeps the
    # system's default (storage/tcp.py, docs/configuration.md).
    node_tcp_congestion: str = "cubic"
    s3_tcp_congestion: str = ""
    # Linux scheduling policy of every thread of this process: "batch" (SCHED_BATCH: a woken
    # thread of ours never preempts a running one) or "normal" (huimin/tuning.py).
    sched_policy: Literal["batch", "normal"] = "batch"
    # TLS: this process's listener (S3 on a gateway, node protocol on a node) serves HTTPS when
    # a certificate and key are given; a gateway talks HTTPS to nodes when node_tls_ca_file is
    # set (the CA that signed the nodes' certificates).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    node_tls_ca_file: Path | None = None
    # Healing: rebuild rate cap (0 = unlimited), how often every key is checked, and how often
    # a check also re-reads every shard to verify its hashes (a scrub).
    heal_rate_mb_s: float = Field(default=200.0, ge=0)
    heal_scan_interval_s: float = Field(default=3600.0, gt=0)
    scrub_interval_s: float = Field(default=7 * 86400.0, gt=0)

    def ec_check(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r} is not one of {CODECS}")
        n = self.ec_data_shards + self.ec_parity_shards
        if self.drives % n:
            raise ValueError(f"{self.drives} drives do not divide into sets of {n}")


_TOML_FILE: list[Path] = []


class _FileSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _TOML_FILE:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_TOML_FILE[-1]))
        return tuple(sources)


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config`` (TOML) and the environment, with CLI ``overrides`` on top."""
    _TOML_FILE.clear()
    if config is not None:
        if not config.is_file():
            raise FileNotFoundError(config)
        _TOML_FILE.append(config)
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = Settings(**_FileSettings(**given).model_dump())
    settings.ec_check()
    return settings
