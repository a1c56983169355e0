/// <reference types="vite/client" />
declare module "*.vue" {
  import type { DefineComponent } from "vue";
  const component: DefineComponent<object, object, unknown>;
  export default component;
}

// @getodk/web-forms ships no type declarations; these are the parts the app uses.
declare module "@getodk/web-forms" {
  import type { DefineComponent, Plugin } from "vue";
  export const OdkWebForm: DefineComponent<{
    formXml: string;
    fetchFormAttachment: (url: URL) => Promise<Response>;
  }>;
  export const webFormsPlugin: Plugin;
  export const POST_SUBMIT__NEW_INSTANCE: symbol;
}
