// The chat page over TLS in headless Chromium: https:// page, wss:// socket.
//
//   node tests/browser/tls.test.mjs        (after `cargo build --release`; ./scripts/tls-test)
//
// A test CA and a server certificate for localhost are made here with `openssl` (nothing is
// committed); `wsloop serve --tls-cert --tls-key` serves the chain. Chromium trusts the test
// CA through `--ignore-certificate-errors-spki-list=<SHA-256 of the CA's public key>`: it
// works headless, needs no NSS database, and applies to chains that contain that key. A
// second browser without the flag must refuse the page (the control that shows the flag is
// what makes it trusted). Two users then chat over wss://.
// Env: CHAT_TEST_BIN (default target/release/wsloop), CHROMIUM (default /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.CHAT_TEST_BIN || path.join(ROOT, 'target/release/wsloop');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 15_000;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

const dir = mkdtempSync(path.join(os.tmpdir(), 'wsloop-tls-browser-'));
let server = null;
const browsers = [];
let passed = 0;
let failed = 0;

function cleanup() {
  if (server) try { server.kill('SIGKILL'); } catch { /* gone */ }
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok ${passed + failed} - ${name}`);
  } catch (err) {
    failed++;
    console.log(`not ok ${passed + failed} - ${name}\n  ${err.stack || err}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

// ---- certificates ------------------------------------------------------------------------
function openssl(...args) {
  return execFileSync('openssl', args, { cwd: dir, stdio: ['pipe', 'pipe', 'ignore'] });
}

function makeCerts() {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=wsloop browser test CA', '-days', '1', '-keyout', 'ca-key.pem', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=localhost', '-keyout', 'key.pem', '-out', 'leaf.csr');
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem',
    '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'leaf.pem');
  const chain = readFileSync(path.join(dir, 'leaf.pem'), 'utf8') + readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  writeFileSync(path.join(dir, 'chain.pem'), chain);
  // base64(SHA-256(SubjectPublicKeyInfo)) of the CA, as Chromium wants it.
  const spki = openssl('x509', '-in', 'ca.pem', '-pubkey', '-noout');
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: spki });
  return execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der }).toString('base64');
}

// ---- the server --------------------------------------------------------------------------
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function listening(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

async function startServer(port) {
  server = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`,
    '--tls-cert', path.join(dir, 'chain.pem'), '--tls-key', path.join(dir, 'key.pem')],
  { stdio: ['ignore', 'inherit', 'inherit'] });
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`wsloop serve exited (${server.exitCode})`);
    if (await listening(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('wsloop serve --tls did not start');
}

// ---- the pages ---------------------------------------------------------------------------
async function connectAs(browser, base, name) {
  const context = await browser.newContext();
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  await page.goto(base + '/');
  await page.getByTestId('name-input').fill(name);
  await page.getByTestId('connect-button').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.dataset.state === 'online');
  return page;
}

async function main() {
  const spki = makeCerts();
  const port = await freePort();
  await startServer(port);
  const base = `https://localhost:${port}`;
  console.log(`# wsloop serve --tls on ${base}; CA SPKI ${spki}`);

  await check('without the test CA trusted, Chromium refuses the page', async () => {
    const plain = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
    browsers.push(plain);
    const page = await (await plain.newContext()).newPage();
    const error = await page.goto(base + '/', { timeout: WAIT_MS }).then(() => null, (e) => e.message);
    assert(error && error.includes('ERR_CERT'), `navigation fails on the certificate (${error})`);
    await plain.close();
  });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...ARGS, `--ignore-certificate-errors-spki-list=${spki}`],
    timeout: 30_000,
  });
  browsers.push(browser);
  await check('alice and bob chat over wss:// from an https:// page', async () => {
    const [alice, bob] = await Promise.all([connectAs(browser, base, 'alice'), connectAs(browser, base, 'bob')]);
    const protocol = await alice.evaluate(() => location.protocol);
    assert(protocol === 'https:', `the page is on https (${protocol})`);
    const text = `hello over TLS ${Date.now()}`;
    await alice.getByTestId('message-input').fill(text);
    await alice.getByTestId('send-button').click();
    await bob.getByTestId('message-list').getByTestId('message-text').filter({ hasText: text }).first().waitFor();
  });
  for (const b of browsers) await b.close().catch(() => {});
  server.kill('SIGTERM');
  console.log(`# ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

const timer = setTimeout(() => { console.log('not ok - the whole test timed out'); process.exit(1); }, 120_000);
main().catch((err) => { console.log(`not ok - ${err.stack || err}`); process.exitCode = 1; })
  .finally(() => clearTimeout(timer));
