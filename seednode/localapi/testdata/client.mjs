// A client of the local API in another language: node's own http module
// over the Unix socket given as the first argument. It sets, reads,
// patches, increments and watches a document, and prints what it saw as
// one JSON object.
import http from 'node:http';

const socketPath = process.argv[2];
const doc = '/v1/vaults/agent/docs/profile';

function request(method, path, body, contentType) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = contentType || 'application/json';
    const req = http.request({ socketPath, method, path, headers }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, heads: res.headers['seedfleet-heads'], body: data ? JSON.parse(data) : null }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

// watch opens an event stream and calls onEvent(name, data) for each
// event; it returns a function that closes the stream.
function watch(path, onEvent) {
  const req = http.request({ socketPath, method: 'GET', path, headers: { Accept: 'text/event-stream' } }, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let name = '';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) name = line.slice(7);
          if (line.startsWith('data: ')) data = line.slice(6);
        }
        if (name) onEvent(name, JSON.parse(data));
      }
    });
  });
  req.on('error', () => {});
  req.end();
  return () => req.destroy();
}

function must(cond, what) {
  if (!cond) throw new Error(what);
}

const out = {};
const set = await request('PUT', doc + '?path=name', '"Ada"');
must(set.status === 200 && set.body.heads.length === 1, 'set: ' + JSON.stringify(set));
const read = await request('GET', doc);
must(read.status === 200 && read.heads === set.body.heads[0], 'read: ' + JSON.stringify(read));
out.read = read.body;
const patch = await request('PATCH', doc, { tags: ['js'], prefs: { theme: 'dark' } }, 'application/merge-patch+json');
must(patch.status === 200, 'patch: ' + JSON.stringify(patch));
const incr = await request('POST', doc, { op: 'incr', path: 'visits', delta: 2 });
must(incr.status === 200, 'incr: ' + JSON.stringify(incr));
const missing = await request('GET', doc + '?path=nope');
out.missing = { status: missing.status, hasError: typeof missing.body.error === 'string', hasHint: typeof missing.body.hint === 'string' };

const seen = [];
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no event for the change: ' + JSON.stringify(seen))), 60000);
  let changed = false;
  const close = watch('/v1/vaults/agent/watch/profile?path=tags', (name, data) => {
    if (name !== 'state') return;
    seen.push(data.value);
    if (!changed) {
      changed = true;
      request('POST', doc, { op: 'append', path: 'tags', value: 'node' }).catch(reject);
    } else if (JSON.stringify(data.value) === '["js","node"]') {
      clearTimeout(timer);
      close();
      resolve();
    }
  });
});
out.watched = seen;
out.final = (await request('GET', doc)).body;
console.log(JSON.stringify(out));
