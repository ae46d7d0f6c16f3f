// Build the web app into collab/static (or the directory given as the first argument).
//
//   cd web && npm ci && node build.mjs            # writes ../collab/static
//   node web/build.mjs /tmp/out                   # anywhere else (tests compare the two)
//
// The output is deterministic: the same sources and node_modules give the same
// bytes, whatever the working directory (no source maps, no absolute paths, no
// timestamps in the compressed files).
//
// The script and the stylesheet get content-hashed names (app.<16 hex>.js), which
// collab/web.py serves as immutable for a year; the pages and the other files keep
// their names and revalidate. Every text file gets a gzip (.gz) and a brotli (.br)
// sibling, which aiohttp's FileResponse sends when Accept-Encoding allows it.
import { build, transform } from 'esbuild'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib'

const here = dirname(fileURLToPath(import.meta.url))
const outdir = resolve(process.argv[2] || join(here, '..', 'collab', 'static'))
const staticSrc = join(here, 'src', 'static')

/** Every file this build writes, by name, with its bytes. */
const files = new Map()
/** The names the pages use (/static/app.js) and what they become (/static/app.<hash>.js). */
const hashed = new Map()

/** `app.js` → `app.<first 16 hex of sha256>.js`; collab/web.py's HASHED_NAME matches it. */
function hashedName (name, bytes) {
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16)
  const dot = name.lastIndexOf('.')
  return `${name.slice(0, dot)}.${hash}${name.slice(dot)}`
}

function addHashed (name, bytes) {
  const out = hashedName(name, bytes)
  files.set(out, bytes)
  hashed.set(name, out)
}

const result = await build({
  absWorkingDir: here,
  entryPoints: ['src/main.js'],
  outfile: 'app.js',
  write: false,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  charset: 'utf8',
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' }
})
const [script] = result.outputFiles
addHashed('app.js', Buffer.from(script.contents))

// The static files are copied as they are; stylesheets are minified and hashed.
for (const name of readdirSync(staticSrc).sort()) {
  if (name.endsWith('.css')) {
    const css = await transform(readFileSync(join(staticSrc, name), 'utf8'), { loader: 'css', minify: true, legalComments: 'none' })
    addHashed(name, Buffer.from(css.code))
  } else {
    files.set(name, readFileSync(join(staticSrc, name)))
  }
}

// The two pages differ only in their title and which part of the app they start;
// both name the hashed files, and the build fails if the template stops naming one.
const template = readFileSync(join(here, 'src', 'page.html'), 'utf8')
const pages = { 'index.html': ['collab', 'lobby'], 'session.html': ['collab session', 'session'] }
for (const [name, [title, page]] of Object.entries(pages)) {
  let html = template.replace('{{title}}', title).replace('{{page}}', page)
  for (const [plain, out] of hashed) {
    const before = `"/static/${plain}"`
    if (!html.includes(before)) throw new Error(`web/src/page.html does not reference ${before}`)
    html = html.replaceAll(before, `"/static/${out}"`)
  }
  files.set(name, Buffer.from(html))
}

// Licences of every package in the bundle, next to it.
const packages = new Map()
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/^node_modules\/((?:@[^/]+\/)?[^/]+)\//)
  if (!match || packages.has(match[1])) continue
  const dir = join(here, 'node_modules', match[1])
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  const licenceFile = readdirSync(dir).sort().find((f) => /^(licen[sc]e|copying)(\.|$)/i.test(f))
  const text = licenceFile ? readFileSync(join(dir, licenceFile), 'utf8').trim() : '(no licence file; package.json says ' + meta.license + ')'
  packages.set(match[1], { version: meta.version, license: meta.license, text })
}
const notices = [`Third-party software bundled in ${hashed.get('app.js')}`, '']
for (const name of [...packages.keys()].sort()) {
  const p = packages.get(name)
  notices.push('='.repeat(72), `${name} ${p.version} (${p.license})`, '='.repeat(72), p.text.replace(/\r\n/g, '\n'), '')
}
files.set('THIRD_PARTY_LICENSES.txt', Buffer.from(notices.join('\n')))

// Precompressed siblings of every text file, at the highest levels: they are
// compressed once here, not per request. gzip's header has mtime 0 from zlib;
// its OS byte is set to 255 ("unknown") so that every platform writes the same bytes.
const COMPRESSIBLE = /\.(js|css|html|svg|txt)$/
for (const [name, bytes] of [...files]) {
  if (!COMPRESSIBLE.test(name)) continue
  const gz = gzipSync(bytes, { level: 9 })
  gz[9] = 255
  files.set(name + '.gz', gz)
  files.set(name + '.br', brotliCompressSync(bytes, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: 11,
      [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT,
      [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length
    }
  }))
}

// Files an earlier build wrote (an older hash, a sibling of a file that is gone)
// are removed; only names of the kinds this build writes, nothing else in the directory.
const BUILT = /^[\w-]+(\.[0-9a-f]{16})?\.(js|css|html|svg|txt)(\.gz|\.br)?$/
mkdirSync(outdir, { recursive: true })
for (const name of readdirSync(outdir).sort()) {
  if (BUILT.test(name) && !files.has(name) && statSync(join(outdir, name)).isFile()) rmSync(join(outdir, name))
}
for (const [name, bytes] of files) writeFileSync(join(outdir, name), bytes)

const app = hashed.get('app.js')
const kib = (name) => (files.get(name).length / 1024).toFixed(1) + ' KiB'
console.log(`built ${join(outdir, app)} (${kib(app)}; gzip ${kib(app + '.gz')}, brotli ${kib(app + '.br')}) and ${files.size - 1} other files`)
