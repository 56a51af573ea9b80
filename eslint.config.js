// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import layers from './scripts/lint/layers.js'

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', '.shoal*/', '.bench/', '.tmp/', 'gpu-bundle/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly'
      }
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error'
    }
  },
  {
    // Imports point one way and cross a layer or folder boundary only through its index.ts.
    files: ['src/**/*.ts'],
    plugins: { shoal: layers },
    rules: { 'shoal/layer-order': 'error', 'shoal/layer-surface': 'error' }
  },
  {
    // The CLI, scripts and tests talk to a terminal.
    files: ['src/node/cli/**', 'scripts/**', 'test/**', 'bin/**'],
    rules: { 'no-console': 'off' }
  }
)
