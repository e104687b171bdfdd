/**
 * The studio in a real headless browser (Debian's chromium over the DevTools pipe) against a real
 * `hostlink serve`: load the page, deploy a .wasm through the file input and an example through its button,
 * call a method with JSON input, see the result, gas, state root, logs, trace, the context's state and the
 * live list of calls, then take a screenshot and check it is not blank. Skipped when no chromium is installed.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { contractPath, tempDir } from '../helpers.js';
import { Browser, findChromium } from './cdp.js';
import { pngColours } from './png.js';
import { api, startServe } from './serve-process.js';

const chromium = findChromium();

test('studio: deploy, call, see the result and the live calls; the screenshot is not blank', { skip: chromium ? false : 'chromium is not installed (apt-get install chromium)' }, async () => {
  const dir = tempDir();
  const node = await startServe(['--data-dir', join(dir.path, 'data')]);
  const browser = Browser.launch(chromium!, join(dir.path, 'profile'));
  try {
    const session = await browser.page();
    const send = (method: string, params: Record<string, unknown> = {}) => browser.send(method, params, session);
    /** Evaluates an expression in the page and returns its value. */
    const evaluate = async (expression: string): Promise<any> => {
      const r = await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error(`in page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
      return r.result.value;
    };
    /** Waits until the expression is truthy in the page (bounded: a broken page fails, it does not hang). */
    const until = async (expression: string, what: string): Promise<any> => {
      for (let i = 0; i < 600; i++) {
        const v = await evaluate(expression);
        if (v) return v;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the page never showed ${what}; it shows: ${await evaluate('document.body.innerText')}`);
    };
    await send('Page.enable');
    await send('Emulation.setDeviceMetricsOverride', { width: 1280, height: 1000, deviceScaleFactor: 1, mobile: false });
    const loaded = browser.nextEvent('Page.loadEventFired');
    await send('Page.navigate', { url: node.url });
    await loaded;
    await until(`document.querySelectorAll('#example option').length > 0`, 'the example list');
    await until(`document.querySelector('#live').textContent.includes('live')`, 'the live stream connected');
    assert.match(await evaluate(`document.querySelector('#status').textContent`), /^node /);

    // Deploy a .wasm through the file input, as a user picks a file.
    const { root } = await send('DOM.getDocument');
    const { nodeId } = await send('DOM.querySelector', { nodeId: root.nodeId, selector: '#wasm-file' });
    await send('DOM.setFileInputFiles', { nodeId, files: [contractPath('kv-store')] });
    await evaluate(`document.querySelector('#deploy-file').click()`);
    await until(`document.querySelector('#deploy-result').textContent.startsWith('deployed')`, 'the deployed hash');
    await until(`[...document.querySelectorAll('#methods option')].some((o) => o.value === 'set')`, 'the contract methods');

    // Call set, then get, with JSON input.
    const call = async (method: string, input: string): Promise<void> => {
      await evaluate(`(() => {
        document.querySelector('#method').value = ${JSON.stringify(method)};
        document.querySelector('#context').value = 'studio';
        document.querySelector('#input').value = ${JSON.stringify(input)};
        document.querySelector('#result').hidden = true;
        document.querySelector('#call').click();
      })()`);
      await until(`!document.querySelector('#result').hidden || !document.querySelector('#call-error').hidden`, `the result of ${method}`);
    };
    await call('set', '{"key":"hello","value":"world"}');
    assert.equal(await evaluate(`document.querySelector('#call-error').hidden`), true, await evaluate(`document.querySelector('#call-error').textContent`));
    assert.equal(await evaluate(`document.querySelector('#result-code').textContent`), 'return');
    const facts = await evaluate(`document.querySelector('#result-facts').innerText`);
    const state = await api(`${node.url}api/contexts/studio/state`);
    assert.ok(facts.includes(state.body.root), `the state root is shown: ${facts}`);
    assert.match(facts, /gas used\s+[1-9]\d*/);
    assert.equal(await evaluate(`document.querySelector('#result-logs').textContent`), 'set hello');
    assert.ok((await evaluate(`document.querySelectorAll('#trace tbody tr').length`)) >= 2, 'the trace lists the requests');
    await until(`document.querySelector('#state-entries').innerText.includes('e:hello')`, 'the context state');

    await call('get', '{"key":"hello"}');
    assert.equal(await evaluate(`document.querySelector('#result-value').textContent`), '"world"');
    await until(`document.querySelectorAll('#recent tbody tr').length >= 2`, 'the live list of calls');
    assert.match(await evaluate(`document.querySelector('#recent tbody tr').innerText`), /get\s+return/);

    // The node log shows the pool's VM processes starting (the pool starts with the first call).
    await until(`[...document.querySelectorAll('#node-log li')].some((li) => /VM \\d+ launched \\(pool\\)/.test(li.textContent))`, 'the VM launches in the node log');

    // A failing call is shown as such.
    await call('get_result', '{"key":"absent"}');
    assert.equal(await evaluate(`document.querySelector('#result-code').textContent`), 'user_error');

    // Deploy a built example through its button.
    await evaluate(`document.querySelector('#example').value = 'kv-store'; document.querySelector('#deploy-example').click()`);
    await until(`document.querySelector('#deploy-result').textContent.startsWith('deployed')`, 'the example deployed');

    const shot = Buffer.from((await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: false })).data, 'base64');
    // HOSTLINK_STUDIO_SCREENSHOT=path keeps the picture (a CI artifact, or to look at the page).
    const keep = process.env['HOSTLINK_STUDIO_SCREENSHOT'];
    if (keep) writeFileSync(keep, shot);
    const { width, height, colours } = pngColours(shot);
    assert.deepEqual([width, height], [1280, 1000]);
    assert.ok(shot.length > 20_000, `screenshot of ${shot.length} bytes looks empty`);
    assert.ok(colours > 50, `screenshot has ${colours} distinct colours: blank`);
  } finally {
    await browser.close();
    await node.stop();
    dir.remove();
  }
});

test('a page on another site learns nothing from the node by loading its API, and a link there still opens the studio', { skip: chromium ? false : 'chromium is not installed (apt-get install chromium)' }, async () => {
  const dir = tempDir();
  const node = await startServe(['--data-dir', join(dir.path, 'data')]);
  const deployed = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: readFileSync(contractPath('kv-store')) });
  const hash: string = deployed.body.code_hash;
  // The other site: "localhost" is another site than the node's 127.0.0.1. Its page loads one deployed and one
  // unknown contract through elements that need no CORS and send no Origin, and watches load and error.
  const probes = `<!doctype html><body><a id="link" href="${node.url}">studio</a><script>
    const load = (make, path) => new Promise((resolve) => { const e = make('${node.url}' + path); e.onload = () => resolve('load'); e.onerror = () => resolve('error'); document.body.append(e); });
    const object = (url) => Object.assign(document.createElement('object'), { data: url });
    const prefetch = (url) => Object.assign(document.createElement('link'), { rel: 'prefetch', href: url });
    window.seen = Promise.all([object, prefetch].flatMap((make) => ['api/codes/${hash}', 'api/codes/${'ab'.repeat(32)}'].map((path) => load(make, path))));
  </script></body>`;
  const site = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(probes));
  await new Promise<void>((resolve) => site.listen(0, 'localhost', resolve));
  const browser = Browser.launch(chromium!, join(dir.path, 'profile'));
  try {
    const session = await browser.page();
    const send = (method: string, params: Record<string, unknown> = {}) => browser.send(method, params, session);
    const evaluate = async (expression: string): Promise<any> => (await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })).result.value;
    await send('Page.enable');
    const loaded = browser.nextEvent('Page.loadEventFired');
    await send('Page.navigate', { url: `http://localhost:${(site.address() as AddressInfo).port}/` });
    await loaded;
    const [objectKnown, objectUnknown, prefetchKnown, prefetchUnknown] = await evaluate('window.seen');
    // Before, the deployed contract loaded and the unknown one failed: the page learned what the node holds.
    assert.equal(objectKnown, objectUnknown, 'an <object> tells a deployed contract from an unknown one');
    assert.equal(prefetchKnown, prefetchUnknown, 'a prefetch tells a deployed contract from an unknown one');

    // The operator follows a link from that site to the studio: it opens and talks to its node.
    const studio = browser.nextEvent('Page.loadEventFired');
    await evaluate(`document.querySelector('#link').click()`);
    await studio;
    for (let i = 0; i < 200 && !(await evaluate(`document.querySelectorAll('#codes li').length > 0`)); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await evaluate(`document.querySelector('#codes li').title`), hash);
  } finally {
    await browser.close();
    site.close();
    await node.stop();
    dir.remove();
  }
});
