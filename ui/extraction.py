"""Model extraction: how much of the teacher each student copied through its logits alone, on the
labeled test set: top-1 agreement and mean KL(teacher || student) per class, after blind
distillation and after each fine-tune."""
import streamlit as st

from bdcore.curation.extraction import ALL
from bdcore.embeddings import ExploreError, checkpoint_stamps
from ui.curation_figures import extraction_figure
from ui.curation_resources import extraction_table
from ui.run_picker import pick_run

st.title("Model extraction")
st.caption("The blind student never sees a labeled image: it learns from the teacher's logits on "
           "other data. How much of the teacher does that copy? The paper's closing remark: given "
           "a model's logits, it is easy to replicate its performance without its training data.")

session = pick_run(st.columns([3, 2])[0], "ext_run",
                   "No run with a trained teacher yet. Launch one from the Home or Launch page.")
config = session.config
if len(session.roles) < 2:
    st.info(f"Run {session.run_id} has only its teacher so far: come back once its blind stage finishes.")
    st.stop()

bar = st.progress(0.0, text="the models on the labeled test set")
try:
    table = extraction_table(str(session.path.resolve()), checkpoint_stamps(session.path), session,
                             lambda f, m: bar.progress(min(f, 1.0), text=m))
except ExploreError as err:
    st.error(str(err))
    st.stop()
bar.empty()

st.write(f"On the **{len(session.data.test_y):,}** labeled test images of {config.labeled}: how often "
         f"each student ({config.student}) gives the teacher's ({config.teacher}) top-1 class, and the "
         "mean KL divergence from the teacher's soft label to the student's at T=1 (0: identical).")
overall = table[table["class"] == ALL].set_index("model")
for where, (role, row) in zip(st.columns(len(overall)), overall.iterrows(), strict=True):
    where.metric(f"{role}: agreement", f"{row['agreement']:.2%}", help=f"student accuracy "
                 f"{row['student_accuracy']:.2%}, teacher {row['teacher_accuracy']:.2%}")
    where.metric(f"{role}: mean KL", f"{row['mean_kl']:.4f} nats")

per_class = table[table["class"] != ALL]
st.plotly_chart(extraction_figure(per_class, "agreement", "top-1 agreement with the teacher, per true class",
                                  percent=True), key="agreement")
st.plotly_chart(extraction_figure(per_class, "mean_kl", "mean KL(teacher || student), nats", percent=False),
                key="kl")
st.caption("A class where the teacher itself is often wrong can show low agreement yet high student "
           "accuracy, or the reverse: the table gives both models' accuracies beside it.")
st.dataframe(table, hide_index=True, column_config={
    **{c: st.column_config.NumberColumn(c, format="percent")
       for c in ("agreement", "student_accuracy", "teacher_accuracy")},
    "mean_kl": st.column_config.NumberColumn("mean KL", format="%.4f")})
st.download_button("Extraction CSV", table.to_csv(index=False), f"extraction-{session.run_id}.csv",
                   "text/csv")
