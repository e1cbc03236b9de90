import { type Logger, serve } from '@rigbox/tfplugin';
import { RigboxProvider } from './provider.js';

/** Key-shaped strings never reach the provider log, whatever path they took. */
const SECRET_SHAPES =
  /(sk-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,}|gsk_[A-Za-z0-9]{8,}|xai-[A-Za-z0-9_-]{8,}|rbx[a-z]?_[A-Za-z0-9_-]{16,}|hvs\.[A-Za-z0-9_-]{16,})/g;

/** Log lines in hclog's JSON shape on stderr, which Terraform shows under TF_LOG. */
function line(level: string, message: string, fields: Record<string, unknown> = {}) {
  const text = JSON.stringify({
    '@level': level,
    '@message': message,
    '@module': 'provider.rigbox',
    '@timestamp': new Date().toISOString(),
    ...fields,
  });
  process.stderr.write(`${text.replace(SECRET_SHAPES, '[REDACTED]')}\n`);
}

// Decided once: debug() is called on every RPC.
const verbose = /^(trace|debug)$/i.test(process.env.TF_LOG_PROVIDER ?? process.env.TF_LOG ?? '');
const log: Logger = {
  debug: (m, f) => {
    if (verbose) line('debug', m, f);
  },
  error: (m, f) => line('error', m, f),
};

process.on('uncaughtException', (err) => {
  line('error', 'uncaught exception', { error: `${err.name}: ${err.message}` });
});
process.on('unhandledRejection', (err) => {
  line('error', 'unhandled rejection', {
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
  });
});

// Defined by the bundle (scripts/bundle.mjs): the GetProviderSchema answer, encoded at build time.
declare const RIGBOX_PROVIDER_SCHEMA_ANSWER: string | undefined;
const encodedSchema =
  typeof RIGBOX_PROVIDER_SCHEMA_ANSWER === 'string'
    ? Buffer.from(RIGBOX_PROVIDER_SCHEMA_ANSWER, 'base64')
    : undefined;

void serve(new RigboxProvider(), log, encodedSchema);
