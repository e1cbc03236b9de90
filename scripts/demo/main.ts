import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs, stripVTControlCharacters as stripAnsi } from 'node:util';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { EngineProcess } from '../lib/engine-process.js';
import { type MotoEngine, startMoto } from '../lib/moto.js';
import { isPortFree } from '../lib/ports.js';
import { PortInUseError, REPO, RIGBOX_BIN, startRigboxService } from '../lib/rigbox-service.js';
import { startVaultDevServer, type VaultDevServer } from '../lib/vault.js';
import { type CommandResult, CommandRunner } from './commands.js';
import { DemoError } from './errors.js';
import { Narrator, seconds } from './narrator.js';
import {
  build,
  chooseEngine,
  type Engine,
  installTools,
  missingTools,
  staleBuilds,
  TOFURC,
} from './prepare.js';
import { scanForKeys } from './scan.js';

const USAGE = `usage: npm run demo [-- [--keep] [--port <n>] [--engine terraform|tofu]]

  --keep            leave the API, Vault and moto running (and the config deployed) and print the
                    variables to export to keep playing; otherwise everything is stopped and removed
  --port <n>        serve the Rigbox API on this port (default: a free one)
  --engine <name>   terraform or tofu (default: terraform if it is on the PATH, else the repo's tofu)`;

export const SCAN_LINE = '0 occurrences of the key outside Vault/SSM and the encrypted store';

const STACK = 'rigbox-ai-config';
const ML_VAULT_PATH = 'teams/ml/openai';
const SSM_RESEARCH = '/rigbox/research/anthropic';
const SSM_DEFAULTS = '/rigbox/platform/anthropic';
const TEAMS = ['ml', 'research', 'support'] as const;
const STEPS = 14;

interface Options {
  keep: boolean;
  port: number | undefined;
  engine: string | undefined;
  help: boolean;
}

function parseOptions(argv: string[]): Options {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        keep: { type: 'boolean' },
        port: { type: 'string' },
        engine: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new DemoError(`${(error as Error).message} (npm run demo -- --help lists the options)`);
  }
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new DemoError(`--port must be a port number 1-65535, got ${JSON.stringify(values.port)}`);
    }
  }
  return {
    keep: values.keep === true,
    port,
    engine: typeof values.engine === 'string' ? values.engine : undefined,
    help: values.help === true,
  };
}

/** A fake key, marked as one, with a random tail so the final scan can only match this run's keys. */
function demoKey(prefix: string): string {
  return `${prefix}DEMO-FAKE-KEY-not-real-${randomBytes(12).toString('hex')}`;
}

/** How a key is shown: its marked prefix only, never the random tail. */
const shown = (key: string) => `${key.slice(0, key.lastIndexOf('-') + 1)}...`;

// Attributes every update changes (bookkeeping), left out of the quoted plan to keep what matters.
const BOOKKEEPING = /^\s*[~+-] (id|revision|updated_at|api_key_updated_at)\s+=/;

/**
 * The lines of a plan or apply that say what changes, as Terraform printed them: the actions only
 * (not the "changed outside of Terraform" notes before them), without bookkeeping attributes.
 */
function changeLines(output: string): string[] {
  const lines = stripAnsi(output).split('\n');
  const actions = lines.findIndex((line) => /will perform the following actions/.test(line));
  return lines
    .slice(actions === -1 ? 0 : actions)
    .filter(
      (line) =>
        (/^\s*# \S+ (will be|must be)/.test(line) ||
          /->/.test(line) ||
          /^(Plan|Apply complete|Destroy complete|No changes\.)/.test(line.trim()) ||
          /\(local-exec\): [^E]/.test(line)) &&
        !BOOKKEEPING.test(line),
    )
    .map((line) => line.trimEnd());
}

// Each name here is replaced by a value this run made; the user's own settings (a RIGBOX_DATABASE_URL,
// an AWS profile, a TF_CLI_CONFIG_FILE) must not leak into the demo.
const OWN_PREFIXES = ['RIGBOX_', 'VAULT_', 'AWS_', 'TF_', 'TOFU_', 'CDKTF_'];

function ownEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!OWN_PREFIXES.some((prefix) => name.startsWith(prefix))) env[name] = value;
  }
  return env;
}

class Demo {
  readonly narrator = new Narrator(STEPS);
  interrupted = false;
  private interruptDone: Promise<void> | undefined;
  private dir = '';
  private runner: CommandRunner | undefined;
  private readonly engines: EngineProcess[] = [];
  private readonly keys = {
    ml: demoKey('sk-proj-'),
    mlRotated: demoKey('sk-proj-'),
    research: demoKey('sk-ant-api03-'),
    defaults: demoKey('sk-ant-api03-'),
  };
  private readonly started = Date.now();
  private env: NodeJS.ProcessEnv = {};
  private engineCommand = 'terraform';
  private exports: string[] = [];
  private endpoint = '';
  private token = '';
  private vault: VaultDevServer | undefined;
  private moto: MotoEngine | undefined;
  private readonly ws: Record<(typeof TEAMS)[number], string> = { ml: '', research: '', support: '' };

  constructor(private readonly options: Options) {}

  private get logs() {
    return join(this.dir, 'logs');
  }
  private get stackDir() {
    return join(this.dir, 'cdktf.out/stacks', STACK);
  }
  private get commands(): CommandRunner {
    if (!this.runner) throw new Error('the demo folder is not made yet');
    return this.runner;
  }

  async run(): Promise<void> {
    const { narrator, options } = this;
    narrator.say('Rigbox AI config as code, end to end on this machine: a key referenced in Vault and SSM,');
    narrator.say('deployed with cdktf, drift and a rotation shown by plan, and the key never in state.');
    narrator.say('The demo keys are fake and marked as such (sk-...-DEMO-FAKE-KEY-not-real-...).');

    narrator.begin('Check this machine and install the engines the demo runs');
    if (options.port !== undefined && !(await isPortFree(options.port))) {
      throw new DemoError(
        `port ${options.port} on 127.0.0.1 is in use; free it, or leave --port out to use a free port`,
      );
    }
    const engine = chooseEngine(options.engine);
    this.engineCommand = engine.command;
    this.dir = mkdtempSync(join(tmpdir(), 'rigbox-demo-'));
    mkdirSync(this.logs);
    this.runner = new CommandRunner(join(this.logs, 'commands.log'));
    narrator.note(`Everything the demo writes goes to ${this.dir} (removed at the end unless --keep).`);
    const missing = missingTools(engine);
    if (missing.length > 0) await installTools(narrator, this.commands, missing);
    const version = await this.commands.run(engine.binary, ['version'], {
      env: { ...ownEnv(), TF_CLI_CONFIG_FILE: TOFURC, CHECKPOINT_DISABLE: '1' },
    });
    if (version.code !== 0) {
      throw new DemoError(`${engine.command} version failed: ${lastLine(version.stderr || version.stdout)}`);
    }
    const engineVersion =
      stripAnsi(version.stdout)
        .split('\n')
        .find((line) => /^(Terraform|OpenTofu) v\d/.test(line))
        ?.trim() ?? engine.kind;
    narrator.result(
      `${engineVersion} (${engine.kind === 'terraform' ? 'on the PATH' : "the repo's, from npm run tools"}); Vault, moto and the null provider ${missing.length > 0 ? 'installed' : 'already installed'} in .tools/`,
    );

    narrator.begin('Build the API, the provider (laid into the local mirror) and the constructs');
    const stale = staleBuilds(engine);
    if (stale.length > 0) {
      await build(narrator, this.commands, engine);
      narrator.result('built');
    } else {
      narrator.command('npm run build', 'skipped: everything is built and newer than its sources');
      narrator.result('up to date');
    }

    await this.startEngines();
    await this.seed();
    await this.terraformFlow(engine);
  }

  private async startEngines(): Promise<void> {
    const { narrator } = this;
    narrator.begin(
      'Start the Rigbox API, a Vault dev server and an SSM endpoint (moto) on loopback',
      'The API keeps its SQLite database and its development master key in a throwaway folder.',
    );
    const dataDir = join(this.dir, 'rigbox-data');
    const vaultHome = join(this.dir, 'vault-home');
    mkdirSync(vaultHome);
    const detached = true;
    const service = startRigboxService({
      dataDir,
      ...(this.options.port === undefined ? {} : { port: this.options.port }),
      logFile: join(this.logs, 'rigbox.log'),
      detached,
      env: ownEnv(),
    }).catch((error: unknown) => {
      if (error instanceof PortInUseError) {
        throw new DemoError(`${error.message}; free it, or leave --port out to use a free port`);
      }
      throw new DemoError(`the Rigbox API did not start: ${lastLine(error)}`);
    });
    const vault = startVaultDevServer({
      home: vaultHome,
      logFile: join(this.logs, 'vault.log'),
      detached,
    }).catch((error: unknown) => {
      throw new DemoError(`Vault did not start: ${lastLine(error)}`);
    });
    const moto = startMoto({ logFile: join(this.logs, 'moto.log'), detached }).catch((error: unknown) => {
      throw new DemoError(`moto (the SSM endpoint) did not start: ${lastLine(error)}`);
    });
    // Whatever started is stopped again, even when another one failed.
    const [s, v, m] = await Promise.allSettled([service, vault, moto]);
    if (s.status === 'fulfilled') this.engines.push(s.value.engine);
    if (v.status === 'fulfilled') this.engines.push(v.value.engine);
    if (m.status === 'fulfilled') this.engines.push(m.value.engine);
    for (const r of [s, v, m]) if (r.status === 'rejected') throw r.reason;
    if (s.status !== 'fulfilled' || v.status !== 'fulfilled' || m.status !== 'fulfilled') return;
    this.endpoint = s.value.url;
    this.vault = v.value;
    this.moto = m.value;
    const port = new URL(this.endpoint).port;
    narrator.command(
      `node service/bin/rigbox.js serve --host 127.0.0.1 --port ${port} --data-dir ${dataDir}`,
    );
    narrator.command(`.tools/bin/vault server -dev -dev-listen-address=${new URL(this.vault.address).host}`);
    narrator.command(`.tools/bin/moto_server -H 127.0.0.1 -p ${new URL(this.moto.endpoint).port}`);
    narrator.result(`API ${this.endpoint}, Vault ${this.vault.address}, SSM ${this.moto.endpoint}`);
  }

  private async api(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.endpoint}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new DemoError(`${method} ${path} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  }

  private async vaultPut(key: string): Promise<number> {
    const vault = this.vault;
    if (!vault) throw new Error('Vault is not started');
    const res = await this.commands.run(
      join(REPO, '.tools/bin/vault'),
      ['kv', 'put', '-mount=secret', ML_VAULT_PATH, 'api_key=-'],
      { env: { ...this.env, HOME: join(this.dir, 'vault-home') }, input: key },
    );
    if (res.code !== 0) throw new DemoError(`vault kv put failed: ${lastLine(res.stderr)}`);
    // The table `vault kv put` prints holds the version it wrote.
    const version = /^version\s+(\d+)\s*$/m.exec(res.stdout)?.[1];
    if (version === undefined)
      throw new DemoError(`vault kv put did not say which version it wrote: ${lastLine(res.stdout)}`);
    return Number(version);
  }

  private async seed(): Promise<void> {
    const { narrator, keys } = this;
    const vault = this.vault;
    const moto = this.moto;
    if (!vault || !moto) throw new Error('the engines are not started');
    narrator.begin(
      "Put the demo keys in Vault and SSM; create an API token and the example's three workspaces",
      'The keys go to Vault and SSM only. The config names them by reference; Terraform never sees them.',
    );
    const base = ownEnv();
    const rigboxData = join(this.dir, 'rigbox-data');
    narrator.command(`node service/bin/rigbox.js token create --user demo --data-dir ${rigboxData}`);
    const token = await this.commands.run(
      process.execPath,
      [RIGBOX_BIN, 'token', 'create', '--user', 'demo', '--data-dir', rigboxData],
      { env: base },
    );
    if (token.code !== 0) throw new DemoError(`rigbox token create failed: ${lastLine(token.stderr)}`);
    this.token = token.stdout.trim();

    this.env = {
      ...base,
      RIGBOX_ENDPOINT: this.endpoint,
      RIGBOX_TOKEN: this.token,
      VAULT_ADDR: vault.address,
      VAULT_TOKEN: vault.rootToken,
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: moto.region,
      AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
      TF_CLI_CONFIG_FILE: TOFURC,
      TF_IN_AUTOMATION: '1',
      TF_INPUT: '0',
      CHECKPOINT_DISABLE: '1',
    };

    for (const team of TEAMS) {
      const ws = await this.api('POST', '/api/workspaces', { name: team });
      this.ws[team] = String(ws.id);
      this.env[`TF_VAR_${team}_workspace_id`] = this.ws[team];
    }
    narrator.command(
      `curl -X POST $RIGBOX_ENDPOINT/api/workspaces -H "Authorization: Bearer $RIGBOX_TOKEN" -H 'Content-Type: application/json' -d '{"name": "ml"}'`,
      `and research, support: ${TEAMS.map((t) => this.ws[t]).join(', ')}`,
    );

    narrator.command(
      `printf %s "$ML_KEY" | .tools/bin/vault kv put -mount=secret ${ML_VAULT_PATH} api_key=-`,
      `ML_KEY=${shown(keys.ml)} (the ML team's OpenAI key)`,
    );
    const version = await this.vaultPut(keys.ml);
    // The SDK warns on every start that its releases from 2027 need Node 22; the project runs on 20.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const ssm = new SSMClient({
      endpoint: moto.endpoint,
      region: moto.region,
      credentials: moto.credentials,
    });
    try {
      for (const [name, value, whose] of [
        [SSM_RESEARCH, keys.research, "the research team's Anthropic key"],
        [SSM_DEFAULTS, keys.defaults, 'the key new workspaces get by default'],
      ] as const) {
        narrator.command(
          `aws ssm put-parameter --name ${name} --type SecureString --value "$KEY"`,
          `KEY=${shown(value)} (${whose}; the demo makes this call with the AWS SDK)`,
        );
        await ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: 'SecureString' }));
      }
    } finally {
      ssm.destroy();
    }
    this.exports = [
      `export RIGBOX_ENDPOINT=${this.endpoint} RIGBOX_TOKEN=${this.token}`,
      `export VAULT_ADDR=${vault.address} VAULT_TOKEN=${vault.rootToken}`,
      `export AWS_ENDPOINT_URL=${moto.endpoint} AWS_REGION=${moto.region} AWS_ACCESS_KEY_ID=${moto.credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${moto.credentials.secretAccessKey}`,
      `export TF_CLI_CONFIG_FILE=${TOFURC}`,
      `export ${TEAMS.map((t) => `TF_VAR_${t}_workspace_id=${this.ws[t]}`).join(' ')}`,
      `export DEMO=${this.dir} STACK=${this.stackDir}`,
    ];
    narrator.result(`Vault ${ML_VAULT_PATH} version ${version}, 2 SSM parameters, 3 workspaces`);
    narrator.note('To repeat any step by hand in another shell, set these first (they name this run):');
    for (const line of this.exports) narrator.note(`  ${line}`);
  }

  private async tf(engine: Engine, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
    const res = await this.commands.run(engine.binary, [`-chdir=${this.stackDir}`, ...args], {
      env: { ...this.env, ...extraEnv },
    });
    return { ...res, stdout: stripAnsi(res.stdout), stderr: stripAnsi(res.stderr) };
  }

  private expect(ok: boolean, what: string, res?: CommandResult): void {
    if (ok) return;
    if (res) {
      for (const line of `${res.stdout}\n${res.stderr}`.trim().split('\n').slice(-20))
        this.narrator.quote(line);
    }
    throw new DemoError(what);
  }

  private quoteChanges(output: string, max = 14): void {
    const lines = changeLines(output);
    for (const line of lines.slice(0, max)) this.narrator.quote(line);
    if (lines.length > max) this.narrator.quote(`... (${lines.length - max} more lines)`);
  }

  private async fingerprintOutput(engine: Engine): Promise<string> {
    const res = await this.tf(engine, ['output', '-raw', 'ml_api_key_fingerprint']);
    this.expect(res.code === 0, 'terraform output ml_api_key_fingerprint failed', res);
    return res.stdout.trim();
  }

  private async terraformFlow(engine: Engine): Promise<void> {
    const { narrator } = this;
    const tf = engine.command;
    const chdir = '-chdir=$STACK';

    narrator.begin(
      'Synthesize the TypeScript example (examples/typescript) with cdktf',
      'The app declares the defaults, three workspace configs and a null_resource that restarts the ML',
      "team's agents whenever their key's fingerprint changes. Keys appear only as Vault/SSM references.",
    );
    const tsx = import.meta.resolve('tsx');
    const app = `${process.execPath} --import ${tsx} ${join(REPO, 'examples/typescript/main.ts')}`;
    writeFileSync(
      join(this.dir, 'cdktf.json'),
      `${JSON.stringify({ language: 'typescript', app, sendCrashReports: 'false', terraformProviders: [], terraformModules: [], context: {} }, null, 2)}\n`,
    );
    const cdktf = join(REPO, 'node_modules/.bin/cdktf');
    narrator.command(`cd $DEMO && ${cdktf} synth`, '$DEMO/cdktf.json runs examples/typescript/main.ts');
    const synth = await this.commands.run(cdktf, ['synth'], {
      cwd: this.dir,
      env: {
        ...this.env,
        CDKTF_HOME: join(this.dir, '.cdktf-home'),
        DISABLE_VERSION_CHECK: '1',
        FORCE_COLOR: '0',
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20',
      },
    });
    this.expect(synth.code === 0, `cdktf synth failed (exit ${synth.code})`, synth);
    narrator.result(`wrote ${relative(this.dir, this.stackDir)}/cdk.tf.json`);

    narrator.begin(
      `Deploy: ${engine.kind} init (providers from the repo's offline mirror), then apply`,
      'The provider reads the keys from Vault and SSM now, sends them to the API, and keeps only fingerprints.',
    );
    narrator.command(`${tf} ${chdir} init -input=false`, 'TF_CLI_CONFIG_FILE points at .tools/tofurc');
    const init = await this.tf(engine, ['init', '-input=false']);
    this.expect(init.code === 0, `${engine.kind} init failed (exit ${init.code})`, init);
    narrator.command(`${tf} ${chdir} apply -auto-approve -input=false`);
    const deploy = await this.tf(engine, ['apply', '-auto-approve', '-input=false']);
    this.expect(deploy.code === 0, `${engine.kind} apply failed (exit ${deploy.code})`, deploy);
    this.quoteChanges(
      deploy.stdout
        .split('\n')
        .filter((l) => /local-exec\): [^E]|Apply complete/.test(l))
        .join('\n'),
    );
    const firstFingerprint = await this.fingerprintOutput(engine);
    const ml = await this.api('GET', `/api/workspaces/${this.ws.ml}/ai-config`);
    this.expect(
      ml.api_key_set === true && ml.api_key_fingerprint === firstFingerprint,
      'after the deploy, the ML workspace has no key or a fingerprint other than the one Terraform recorded',
    );
    narrator.result(`deployed; the ML key's fingerprint is ${firstFingerprint}`);

    narrator.begin('Plan again: nothing changed, so nothing to do');
    narrator.command(
      `${tf} ${chdir} plan -detailed-exitcode -input=false`,
      'exit code 0: no changes, 2: changes',
    );
    const empty = await this.tf(engine, ['plan', '-detailed-exitcode', '-input=false']);
    this.expect(
      empty.code === 0,
      `the plan right after the deploy was not empty (exit ${empty.code})`,
      empty,
    );
    this.quoteChanges(empty.stdout);
    narrator.result('exit code 0, no changes');

    narrator.begin('Change the ML workspace by hand, through the API, as someone might in the web UI');
    narrator.command(
      `curl -X PUT $RIGBOX_ENDPOINT/api/workspaces/${this.ws.ml}/ai-config -H "Authorization: Bearer $RIGBOX_TOKEN" -H 'Content-Type: application/json' -d '{"mode": "byok", "provider": "openai", "model": "gpt-4.1"}'`,
    );
    const changed = await this.api('PUT', `/api/workspaces/${this.ws.ml}/ai-config`, {
      mode: 'byok',
      provider: 'openai',
      model: 'gpt-4.1',
    });
    narrator.result(`the ML workspace now runs ${String(changed.model)}; the code says gpt-4o`);

    narrator.begin('Plan shows the drift: the model goes back to what the code says');
    narrator.command(`${tf} ${chdir} plan -detailed-exitcode -input=false -out=drift.tfplan`);
    const drift = await this.tf(engine, ['plan', '-detailed-exitcode', '-input=false', '-out=drift.tfplan']);
    this.expect(
      drift.code === 2 && drift.stdout.includes('gpt-4.1'),
      `the plan after the change by hand did not show the drift (exit ${drift.code})`,
      drift,
    );
    this.quoteChanges(drift.stdout);
    await this.planJson(engine, 'drift');
    narrator.result('exit code 2: the change by hand is drift');

    narrator.begin(
      "Rotate the ML team's key in Vault",
      'A new version of the secret; nothing is told to Terraform or to Rigbox.',
    );
    narrator.command(
      `printf %s "$NEW_KEY" | .tools/bin/vault kv put -mount=secret ${ML_VAULT_PATH} api_key=-`,
      `NEW_KEY=${shown(this.keys.mlRotated)}`,
    );
    const rotated = await this.vaultPut(this.keys.mlRotated);
    narrator.result(`secret/${ML_VAULT_PATH} is at version ${rotated}`);

    narrator.begin(
      'Plan shows the rotation as an update',
      "Refresh reads only the secret's metadata from Vault (its version), never the value.",
    );
    narrator.command(`${tf} ${chdir} plan -detailed-exitcode -input=false -out=rotate.tfplan`);
    const rotate = await this.tf(engine, [
      'plan',
      '-detailed-exitcode',
      '-input=false',
      '-out=rotate.tfplan',
    ]);
    this.expect(
      rotate.code === 2 && /rigbox_workspace_ai_config\.ml\b/.test(rotate.stdout),
      `the plan after the rotation did not update the ML workspace (exit ${rotate.code})`,
      rotate,
    );
    this.quoteChanges(rotate.stdout);
    await this.planJson(engine, 'rotate');
    narrator.result('exit code 2: the rotated key will be sent, and the model put back');

    narrator.begin(
      'Apply the plan, with Terraform debug logs on (scanned at the end like everything else)',
      'The provider reads the new key from Vault and sends it; the fingerprint changes, and the',
      'null_resource whose trigger is that fingerprint is replaced, so its provisioner runs again.',
    );
    const applyLog = join(this.logs, `${engine.kind}-apply.log`);
    narrator.command(
      `TF_LOG=debug TF_LOG_PATH=$DEMO/logs/${engine.kind}-apply.log ${tf} ${chdir} apply -input=false rotate.tfplan`,
    );
    const apply = await this.tf(engine, ['apply', '-input=false', 'rotate.tfplan'], {
      TF_LOG: 'debug',
      TF_LOG_PATH: applyLog,
    });
    this.expect(apply.code === 0, `${engine.kind} apply of the rotation failed (exit ${apply.code})`, apply);
    this.quoteChanges(
      apply.stdout
        .split('\n')
        .filter((l) => /local-exec\): [^E]|Apply complete/.test(l))
        .join('\n'),
    );
    this.expect(
      apply.stdout.includes('restarting its agents'),
      "the null_resource's provisioner did not run again after the rotation",
      apply,
    );
    narrator.command(`${tf} ${chdir} output -raw ml_api_key_fingerprint`);
    const newFingerprint = await this.fingerprintOutput(engine);
    const after = await this.api('GET', `/api/workspaces/${this.ws.ml}/ai-config`);
    this.expect(
      newFingerprint !== firstFingerprint &&
        after.api_key_fingerprint === newFingerprint &&
        after.model === 'gpt-4o',
      'after the apply, the fingerprint did not change, or the API does not show the new key and gpt-4o',
    );
    narrator.result(
      `fingerprint ${firstFingerprint} -> ${newFingerprint}; model gpt-4o again; agents restarted`,
    );

    if (this.options.keep) {
      narrator.begin('Destroy: skipped with --keep, so that the config stays deployed to play with');
      narrator.command(`${tf} ${chdir} destroy -auto-approve -input=false`, 'when you are done');
      narrator.result('skipped');
    } else {
      narrator.begin('Destroy', 'A Rigbox config cannot be deleted; destroying it clears the stored key.');
      narrator.command(`${tf} ${chdir} destroy -auto-approve -input=false`);
      const destroy = await this.tf(engine, ['destroy', '-auto-approve', '-input=false']);
      this.expect(destroy.code === 0, `${engine.kind} destroy failed (exit ${destroy.code})`, destroy);
      this.quoteChanges(
        destroy.stdout
          .split('\n')
          .filter((l) => /Destroy complete/.test(l))
          .join('\n'),
      );
      const cleared = await this.api('GET', `/api/workspaces/${this.ws.ml}/ai-config`);
      this.expect(cleared.api_key_set === false, 'after the destroy, the ML workspace still has a key');
      narrator.result('destroyed; the workspaces hold no key');
    }
  }

  private async planJson(engine: Engine, name: string): Promise<void> {
    const file = `${name}.plan.json`;
    this.narrator.command(
      `${engine.command} -chdir=$STACK show -json ${name}.tfplan > $DEMO/${file}`,
      'scanned at the end',
    );
    const res = await this.tf(engine, ['show', '-json', `${name}.tfplan`]);
    this.expect(res.code === 0, `${engine.kind} show -json ${name}.tfplan failed`, res);
    writeFileSync(join(this.dir, file), res.stdout);
  }

  /** Stops the engines (unless kept), scans what the run produced, and removes it (unless kept). */
  async finish(): Promise<void> {
    const { narrator } = this;
    narrator.begin(
      'Scan everything the demo produced for the demo keys',
      'State and its backup, the plan JSON, cdktf.out, the logs (API, Vault, moto, every command,',
      "Terraform debug), the API's SQLite database and WAL, and this output.",
    );
    if (!this.options.keep) await this.stopEngines();
    const keys = Object.values(this.keys);
    const scan = scanForKeys(this.dir, keys, { "the demo's own output": narrator.transcript() });
    for (const hit of scan.hits) narrator.quote(`${hit.where}: ${hit.count}`);
    if (scan.hits.length > 0) {
      throw new DemoError(`a demo key was found outside Vault/SSM and the encrypted store (listed above)`);
    }
    narrator.result(`${scan.files} files, ${(scan.bytes / 1e6).toFixed(1)} MB, ${keys.length} keys`);
    narrator.say();
    if (this.options.keep) {
      for (const engine of this.engines) engine.release();
      narrator.say('Everything is still running (--keep). To keep playing, in your shell:');
      for (const line of this.exports) narrator.say(`  ${line}`);
      narrator.say(
        `  ${this.engineCommand} -chdir=$STACK plan     # or apply, destroy; the keys stay in Vault/SSM`,
      );
      const pids = this.engines.map((e) => e.pid).filter((pid) => pid !== undefined);
      narrator.say(`When you are done: kill ${pids.join(' ')} && rm -rf ${this.dir}`);
    } else {
      this.removeDir();
      narrator.say(`Stopped the API, Vault and moto, and removed ${this.dir}.`);
    }
    narrator.say(`Demo done in ${seconds(Date.now() - this.started)}.`);
    narrator.say(SCAN_LINE);
  }

  private async stopEngines(): Promise<void> {
    await Promise.all(this.engines.map((engine) => engine.stop()));
  }

  private removeDir(): void {
    if (this.dir !== '') rmSync(this.dir, { recursive: true, force: true });
  }

  /** After a failure: the same clean-up as at the end, or with --keep the way to look around. */
  async cleanUpAfterFailure(): Promise<void> {
    if (this.options.keep && this.engines.length > 0) {
      for (const engine of this.engines) engine.release();
      this.narrator.say(`--keep: left running for a look; the logs are in ${this.dir}/logs`);
      for (const line of this.exports) this.narrator.say(`  ${line}`);
      return;
    }
    await this.stopEngines();
    this.removeDir();
  }

  /** Ctrl-C (or SIGTERM, SIGHUP): stop the running command and every engine, remove the folder. */
  interrupt(signal: string): Promise<void> {
    if (this.interruptDone) return this.interruptDone;
    this.interrupted = true;
    process.stderr.write(`\ndemo: ${signal}: stopping what it started and removing its files\n`);
    this.interruptDone = (async () => {
      await this.runner?.interrupt();
      await this.stopEngines();
      this.removeDir();
    })();
    return this.interruptDone;
  }
}

function lastLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.at(-1) ?? 'no output';
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0]?.trim() || 'unknown error';
}

/** Runs the demo; resolves with the exit code. Never throws: a failure is one line on stderr. */
export async function main(argv: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(argv);
  } catch (error) {
    process.stderr.write(`demo: error: ${firstLine(error)}\n`);
    return 1;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const demo = new Demo(options);
  const onSignal = (signal: NodeJS.Signals) => {
    void demo.interrupt(signal).then(() => process.exit(130));
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  try {
    await demo.run();
    await demo.finish();
    return 0;
  } catch (error) {
    if (demo.interrupted) {
      await demo.interrupt('interrupted');
      return 130;
    }
    await demo.cleanUpAfterFailure().catch(() => undefined);
    process.stderr.write(`demo: error: ${error instanceof DemoError ? error.message : firstLine(error)}\n`);
    return 1;
  }
}
