import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

// Built into ../dist, which server/web/assets.py serves at "/". Everything is bundled:
// no CDN, no inline script or style (the server's CSP allows only 'self').
export default defineConfig({
  plugins: [vue()],
  base: "/",
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    // The Web Forms chunk (loaded only on the fill page) is large by nature.
    chunkSizeWarningLimit: 2500,
    rollupOptions: {
      onwarn(warning, warn) {
        // Web Forms bundles Emscripten's loader, whose eval serves only dynamic
        // linking of side modules; its one WebAssembly module never takes that path.
        if (warning.code === "EVAL" && warning.id?.includes("@getodk/web-forms")) return;
        warn(warning);
      },
    },
    sourcemap: false,
  },
  define: {
    __VUE_OPTIONS_API__: "true", // PrimeVue (inside Web Forms) is written with it
    __VUE_PROD_DEVTOOLS__: "false",
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: "false",
    __VUE_I18N_FULL_INSTALL__: "false",
    __VUE_I18N_LEGACY_API__: "false",
    __INTLIFY_PROD_DEVTOOLS__: "false",
  },
  server: { proxy: { "/v1": "http://127.0.0.1:8383" } },
});
