#!/usr/bin/env python
"""The Python twin of examples/typescript: the same Rigbox AI configs, built with the Python
package that jsii-pacmak makes from @rigbox/cdktf-constructs."""
from cdktf import App, Aspects, LocalExecProvisioner, TerraformOutput, TerraformStack, TerraformVariable
from cdktf_cdktf_provider_null.provider import NullProvider
from cdktf_cdktf_provider_null.resource import Resource
from constructs import Construct
from rigbox_cdktf_constructs import (
    AiMode,
    AiProvider,
    ApiKeySource,
    ByokPolicy,
    KeySourceKind,
    RigboxAiDefaults,
    RigboxProvider,
    RigboxWorkspaceAiConfig,
)


class AiConfigStack(TerraformStack):
    """Defaults, three workspaces (BYOK from Vault, BYOK from SSM, managed) and a null_resource that
    restarts the ML team's agents whenever their key changes."""

    def __init__(self, scope: Construct, id: str):
        super().__init__(scope, id)
        RigboxProvider(self, "rigbox")
        NullProvider(self, "null")
        # cdktf-cdktf-provider-null pins the release it was generated from (3.2.4); any 3.3 will do.
        self.add_override("terraform.required_providers.null.version", "~> 3.3")

        def workspace_id(team: str) -> str:
            return TerraformVariable(
                self,
                f"{team}_workspace_id",
                type="string",
                description=f"The Rigbox workspace of the {team} team",
            ).string_value

        RigboxAiDefaults(
            self,
            "defaults",
            mode=AiMode.BYOK,
            ai_provider=AiProvider.ANTHROPIC,
            model="claude-sonnet-4-20250514",
            api_key_source=ApiKeySource.from_ssm(name="/rigbox/platform/anthropic"),
        )

        ml = RigboxWorkspaceAiConfig(
            self,
            "ml",
            workspace_id=workspace_id("ml"),
            mode=AiMode.BYOK,
            ai_provider=AiProvider.OPENAI,
            model="gpt-4o",
            api_key_source=ApiKeySource.from_vault(mount="secret", path="teams/ml/openai", field="api_key"),
        )

        RigboxWorkspaceAiConfig(
            self,
            "research",
            workspace_id=workspace_id("research"),
            mode=AiMode.BYOK,
            ai_provider=AiProvider.ANTHROPIC,
            model="claude-sonnet-4-20250514",
            api_key_source=ApiKeySource.from_ssm(name="/rigbox/research/anthropic"),
        )

        RigboxWorkspaceAiConfig(
            self,
            "support",
            workspace_id=workspace_id("support"),
            mode=AiMode.MANAGED,
            ai_provider=AiProvider.ANTHROPIC,
            model="claude-sonnet-4-20250514",
        )

        # Replaced (and its provisioner run again) whenever the ML key's fingerprint changes.
        Resource(
            self,
            "restart_ml_agents",
            triggers={"workspace_id": ml.workspace_id, "api_key_fingerprint": ml.api_key_fingerprint},
            provisioners=[
                LocalExecProvisioner(
                    type="local-exec", command='echo "ML workspace key changed: restarting its agents"'
                )
            ],
        )

        TerraformOutput(self, "ml_api_key_fingerprint", value=ml.api_key_fingerprint)
        TerraformOutput(self, "ml_key_source_version", value=ml.source_version)


def platform_policy() -> ByokPolicy:
    """The compliance team's rules for every Rigbox AI config in the app."""
    return ByokPolicy(
        allowed_modes=[AiMode.MANAGED, AiMode.BYOK],
        allowed_ai_providers=[AiProvider.ANTHROPIC, AiProvider.OPENAI],
        allowed_models=["gpt-4o", "gpt-4.1", "claude-sonnet-4-20250514"],
        allowed_key_source_kinds=[KeySourceKind.VAULT, KeySourceKind.SSM],
        allowed_vault_path_prefixes=["secret/teams"],
        allowed_ssm_name_prefixes=["/rigbox"],
    )


app = App()
AiConfigStack(app, "rigbox-ai-config")
# Added to the App, the policy covers every stack in it.
Aspects.of(app).add(platform_policy())
app.synth()
