/**
 * The studio in a real headless browser (Debian's chromium over the DevTools pipe) against a real
 * `hostlink serve`: load the page, deploy a .wasm through the file input and an example through its button,
 * call a method with JSON input, see the result, gas, state root, logs, trace, the context's state and the
 * live list of calls, then take a screenshot and check it is not blank. Skipped when no chromium is installed.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
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
