import { createRouter, createWebHistory } from "vue-router";
import { useSession } from "./composables/useSession";
import SignInPage from "./components/account/SignInPage.vue";
import ProjectListPage from "./components/project/ProjectListPage.vue";
import ProjectPage from "./components/project/ProjectPage.vue";
import FormPage from "./components/form/FormPage.vue";
import SubmissionPage from "./components/submission/SubmissionPage.vue";
import NotFoundPage from "./components/layout/NotFoundPage.vue";
import DatasetPage from "./components/cases/DatasetPage.vue";
import EntityPage from "./components/cases/EntityPage.vue";

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", redirect: "/projects" },
    { path: "/login", name: "login", component: SignInPage, meta: { public: true } },
    { path: "/projects", name: "projects", component: ProjectListPage },
    {
      path: "/projects/:projectId(\\d+)/:tab(forms|app-users|members|settings|case-lists|due|indicators)?",
      name: "project",
      component: ProjectPage,
      props: (r) => ({ projectId: Number(r.params.projectId), tab: r.params.tab || "forms" }),
    },
    {
      path: "/projects/:projectId(\\d+)/forms/:xmlFormId/:tab(overview|submissions|map|export|cleaning)?",
      name: "form",
      component: FormPage,
      props: (r) => ({
        projectId: Number(r.params.projectId),
        xmlFormId: String(r.params.xmlFormId),
        tab: r.params.tab || "overview",
      }),
    },
    {
      path: "/projects/:projectId(\\d+)/forms/:xmlFormId/submissions/:instanceId",
      name: "submission",
      component: SubmissionPage,
      props: (r) => ({
        projectId: Number(r.params.projectId),
        xmlFormId: String(r.params.xmlFormId),
        instanceId: String(r.params.instanceId),
      }),
    },
    {
      path: "/projects/:projectId(\\d+)/forms/:xmlFormId/:draft(draft)?/fill",
      name: "fill",
      // Web Forms is large: its chunk loads only when a form is filled.
      component: () => import("./components/form/FormFillPage.vue"),
      props: (r) => ({
        projectId: Number(r.params.projectId),
        xmlFormId: String(r.params.xmlFormId),
        draft: r.params.draft === "draft",
      }),
    },
    {
      path: "/projects/:projectId(\\d+)/datasets/:datasetName/:tab(entities|deleted)?",
      name: "dataset",
      component: DatasetPage,
      props: (r) => ({
        projectId: Number(r.params.projectId),
        datasetName: String(r.params.datasetName),
        tab: r.params.tab || "entities",
      }),
    },
    {
      path: "/projects/:projectId(\\d+)/datasets/:datasetName/entities/:uuid",
      name: "entity",
      component: EntityPage,
      props: (r) => ({
        projectId: Number(r.params.projectId),
        datasetName: String(r.params.datasetName),
        uuid: String(r.params.uuid),
      }),
    },
    { path: "/:rest(.*)*", name: "not-found", component: NotFoundPage, meta: { public: true } },
  ],
});

router.beforeEach(async (to) => {
  const session = useSession();
  await session.restore();
  if (!to.meta.public && session.state.user === null) {
    return { name: "login", query: { next: to.fullPath } };
  }
  return true;
});
